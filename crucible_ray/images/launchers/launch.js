// crucible sandbox launcher for JavaScript (inside the image as /opt/crucible/launch.js).
// Protocol (crucible_ray/sandbox/backend.py): "R" on stderr when ready; read "<length>\n" and
// the code from stdin, save it as /tmp/main.js, "G" on stderr, then run it as the main module
// with the rest of stdin as its stdin.
"use strict";
const fs = require("fs");
const Module = require("module");

function readInto(buffer, offset, length) {
  for (;;) {
    try {
      return fs.readSync(0, buffer, offset, length, null);
    } catch (err) {
      if (err.code === "EAGAIN") continue;
      throw err;
    }
  }
}

function readExactly(size) {  // never past the code: the rest of stdin is the program's
  const buffer = Buffer.alloc(size);
  let filled = 0;
  while (filled < size) {
    const n = readInto(buffer, filled, size - filled);
    if (n === 0) process.exit(0);  // the host went away before sending the code
    filled += n;
  }
  return buffer;
}

fs.writeSync(2, "R");
let header = "";
while (!header.endsWith("\n")) {
  header += readExactly(1).toString("latin1");
  if (header.length > 16) process.exit(2);
}
const path = "/tmp/main.js";
fs.writeFileSync(path, readExactly(parseInt(header, 10)), { flag: "wx", mode: 0o444 });
fs.writeSync(2, "G");
process.argv[1] = path;
Module.runMain(path);
