// The peers' client libraries, resolved from this folder's own node_modules (see ../peers.ts).
export { WebsocketProvider } from 'y-websocket';
export { io } from 'socket.io-client';
export { default as autocannon } from 'autocannon';
