"""One HTTP request with asyncio.open_connection and happy_eyeballs_delay=0.25, as aiohttp makes
its connections by default (RFC 8305's recommended 250 ms). Prints the time open_connection took
by the program's own clock (the look-up included), the address it connected to and the answer."""
import asyncio
import sys


async def main(host, port):
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    reader, writer = await asyncio.open_connection(host, port, happy_eyeballs_delay=0.25)
    peer = writer.get_extra_info("peername")[0]
    print(f"connected {int((loop.time() - t0) * 1000)} ms {peer}", flush=True)
    writer.write(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    body = (await reader.read()).decode().split("\r\n\r\n", 1)[1].strip()
    print("answer", body, flush=True)
    writer.close()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
