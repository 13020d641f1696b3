// server.js: the zoo protocol (zoo.h) on node's event loop (one JavaScript thread, libuv's
// pool and V8's helpers beside it).
'use strict';
const net = require('net');

function sum(n) {
  const v = new Float64Array(n * 100);
  for (let i = 0; i < v.length; i++) v[i] = (i * i) % 7919;
  let s = 0;
  for (const x of v) s += x;
  return s;
}

const server = net.createServer((c) => {
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const n = parseInt(buf.slice(0, i), 10);
      buf = buf.slice(i + 1);
      c.write(`${process.pid} ${sum(n)}\n`);
    }
  });
  c.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`pid ${process.pid}\nport ${server.address().port}\nready\n`);
});
process.stdin.on('data', (d) => { if (String(d).includes('exit')) process.exit(0); });
process.stdin.on('end', () => process.exit(0));
