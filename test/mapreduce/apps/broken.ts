// A faulty application that fails while loading.

export {};

throw new Error('this module is broken on purpose');
