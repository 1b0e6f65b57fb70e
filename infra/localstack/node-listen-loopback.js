// Preloaded into node servers LocalStack starts (kinesis-mock) via NODE_OPTIONS="--require <this file>":
// they bind 0.0.0.0 and have no host setting; force every listen() onto 127.0.0.1.
"use strict";
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    // listen(port[, host][, backlog][, cb]): replace or insert the host
    if (typeof args[1] === "string") args[1] = "127.0.0.1";
    else args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && !(args[0] instanceof net.Server) && args[0].path === undefined) {
    args[0] = Object.assign({}, args[0], { host: "127.0.0.1" });
  }
  return listen.apply(this, args);
};
