import type ssh2 from 'ssh2';

/**
 * Lets a forwarded connection half-close through ssh2's server side. ssh2 (1.17, Channel.js
 * `onFinish`) sends CLOSE right after its own EOF on every server-side channel, so a workspace
 * client that shuts down its write side (an HTTP/1.0 request, `nc -N`) would lose the answer
 * still coming back. ssh2 has no option for this: the channel's `server` flag is read there and,
 * after construction, only by client-only or server-only methods a tcpip channel never calls
 * (`exit`, `signal`, `setWindow`), so it is cleared, and CLOSE is sent once both directions have
 * ended, as OpenSSH does. A test (half-closed HTTP request through each direction) proves the
 * patch still holds when ssh2 is upgraded.
 */
export function allowHalfClose(channel: ssh2.Channel): void {
  (channel as unknown as { server: boolean }).server = false;
  let sent = false;
  let received = false;
  const closeWhenDone = () => {
    if (sent && received) channel.close();
  };
  channel.once('finish', () => {
    sent = true;
    closeWhenDone();
  });
  channel.once('end', () => {
    received = true;
    closeWhenDone();
  });
}
