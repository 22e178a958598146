// A small in-memory Disk for the MapReduce logic tests: whole files in a map, no faults.

import type { Disk, DiskFile } from '../../src/io/disk.js';

export class MemoryDisk implements Disk {
  readonly files = new Map<string, Uint8Array>();

  async mkdirp(_dir: string): Promise<void> {}

  async list(dir: string): Promise<string[]> {
    const prefix = dir === '' ? '' : `${dir}/`;
    return [...this.files.keys()]
      .filter((path) => path.startsWith(prefix))
      .map((path) => path.slice(prefix.length))
      .sort();
  }

  async exists(path: string): Promise<boolean> {
    return this.files.has(path);
  }

  async open(path: string, options: { create: boolean }): Promise<DiskFile> {
    if (!this.files.has(path)) {
      if (!options.create) throw new Error(`ENOENT: no such file (${path})`);
      this.files.set(path, new Uint8Array(0));
    }
    const files = this.files;
    return {
      path,
      size: () => files.get(path)!.length,
      append: async (chunks) => {
        files.set(path, Buffer.concat([files.get(path)!, ...chunks]));
      },
      read: async (offset, length) => files.get(path)!.slice(offset, offset + length),
      sync: async () => {},
      truncate: async (size) => {
        files.set(path, files.get(path)!.slice(0, size));
      },
      close: async () => {},
    };
  }

  async readFile(path: string): Promise<Uint8Array> {
    const data = this.files.get(path);
    if (data === undefined) throw new Error(`ENOENT: no such file (${path})`);
    return data;
  }

  async rename(from: string, to: string): Promise<void> {
    const data = this.files.get(from);
    if (data === undefined) throw new Error(`ENOENT: no such file (${from})`);
    this.files.delete(from);
    this.files.set(to, data);
  }

  async remove(path: string): Promise<void> {
    this.files.delete(path);
  }

  async syncDir(_dir: string): Promise<void> {}

  text(path: string): string {
    return Buffer.from(this.files.get(path)!).toString('utf8');
  }
}
