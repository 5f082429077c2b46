// A local SMS centre for the tests (SMPP 3.4, the npm smpp package's server).
// Prints one JSON line per event on stdout: first {"listening": PORT}, then
// {"bound": SYSTEM_ID}, {"accepted": DEST, "id": ID, "text": TEXT},
// {"refused": DEST}, {"dropped": DEST}, {"receipt": ID}. Stops by itself
// after SMSC_LIFETIME_S seconds (60 by default). Behaviour:
//   - system id "parcours" and password "secret" bind, others are refused;
//   - destination SMSC_REFUSE (33600000000) is refused (ESME_RINVDSTADR, 0x0B);
//   - destination SMSC_DROP_ONCE (33699999999): the first submission drops
//     the connection without an answer, the next ones are accepted;
//   - every accepted message gets a delivery receipt (stat:DELIVRD) 100 ms later.
'use strict';
const smpp = require('smpp');

const lifetime = Number(process.env.SMSC_LIFETIME_S || 60) * 1000;
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let next = 1000;
let dropped = false;

const text = (m) => (m && typeof m === 'object' && 'message' in m ? m.message : String(m ?? ''));

const server = smpp.createServer({ debug: false }, (session) => {
  session.on('error', () => {});
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== 'parcours' || pdu.password !== 'secret') {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      return;
    }
    say({ bound: pdu.system_id });
    session.send(pdu.response({ system_id: 'SMSC' }));
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    session.close();
  });
  session.on('deliver_sm_resp', () => {});
  session.on('submit_sm', (pdu) => {
    const dest = pdu.destination_addr;
    if (dest === (process.env.SMSC_REFUSE || '33600000000')) {
      say({ refused: dest });
      session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      return;
    }
    if (dest === (process.env.SMSC_DROP_ONCE || '33699999999') && !dropped) {
      dropped = true;
      say({ dropped: dest });
      session.socket.destroy();
      return;
    }
    const id = String(next++);
    const body = pdu.message_payload ? text(pdu.message_payload) : text(pdu.short_message);
    say({ accepted: dest, id, text: body, coding: pdu.data_coding, source: pdu.source_addr });
    session.send(pdu.response({ message_id: id }));
    setTimeout(() => {
      session.deliver_sm({
        source_addr: dest,
        destination_addr: pdu.source_addr,
        esm_class: 4,
        short_message: `id:${id} sub:001 dlvrd:001 submit date:2612041030 done date:2612041031 stat:DELIVRD err:000 text:`,
      });
      say({ receipt: id });
    }, 100);
  });
});

server.listen(0, '127.0.0.1', () => say({ listening: server.address().port }));
setTimeout(() => process.exit(0), lifetime).unref();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
