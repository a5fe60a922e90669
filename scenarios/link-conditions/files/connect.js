// One HTTP request over net.connect, as Node 20 makes it by default: autoSelectFamily (Happy
// Eyeballs) is on, with a 250 ms attempt timeout. Prints Node's own connection events
// (connectionAttempt, connectionAttemptTimeout, connect; Node >= 20.12) timed by its clock from
// its first attempt, so the look-up before it is not counted, then the answer.
const net = require('net');
const [host, port] = [process.argv[2], Number(process.argv[3])];
let first = null;
const since = () => Math.floor(performance.now() - first);
const s = net.connect({ host, port });
let answer = '';
s.on('connectionAttempt', (ip) => {
  if (first === null) first = performance.now();
  console.log(`attempt ${ip} at ${since()} ms`);
});
s.on('connectionAttemptTimeout', (ip) => { console.log(`attempt-timeout ${ip} at ${since()} ms`); });
s.on('connect', () => {
  console.log(`connected ${since()} ms ${s.remoteAddress}`);
  s.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
});
s.on('data', (d) => { answer += d; });
s.on('end', () => { console.log('answer', answer.split('\r\n\r\n')[1].trim()); });
s.on('error', (e) => { console.log('error', e.message); process.exit(1); });
