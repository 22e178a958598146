// A module that loads but is not an application: it exports no map or reduce.

export const answer = 42;
