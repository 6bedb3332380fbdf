// crucible sandbox launcher for JavaScript (inside the image as /opt/crucible/launch.js).
// Protocol (see crucible_ray/languages.py): "R" on stderr when ready, wait for one line on
// stdin, "G" on stderr, then run /code/main.js as the main module with the rest of stdin.
"use strict";
const fs = require("fs");
const Module = require("module");

fs.writeSync(2, "R");
const one = Buffer.alloc(1);
for (;;) {
  let n;
  try {
    n = fs.readSync(0, one, 0, 1, null);
  } catch (err) {
    if (err.code === "EAGAIN") continue;
    throw err;
  }
  if (n === 0) process.exit(0);  // the host went away before sending code
  if (one[0] === 0x0a) break;
}
fs.writeSync(2, "G");
process.argv[1] = "/code/main.js";
Module.runMain("/code/main.js");
