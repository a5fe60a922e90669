// One HTTP request over net.connect, as Node 20 makes it by default: autoSelectFamily (Happy
// Eyeballs) is on, with a 250 ms attempt timeout. Prints the time from the call to the 'connect'
// event (Node's own clock), the address it connected to and the answer.
const net = require('net');
const [host, port] = [process.argv[2], Number(process.argv[3])];
const t0 = performance.now();
const s = net.connect({ host, port });
let answer = '';
s.on('connect', () => {
  console.log(`connected ${Math.floor(performance.now() - t0)} ms ${s.remoteAddress}`);
  s.write(`GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
});
s.on('data', (d) => { answer += d; });
s.on('end', () => { console.log('answer', answer.split('\r\n\r\n')[1].trim()); });
s.on('error', (e) => { console.log('error', e.message); process.exit(1); });
