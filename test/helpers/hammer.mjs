// A client that creates token objects as fast as it can and prints one line per
// object the daemon acknowledged. The kill -9 test reads those lines to know what must
// have survived. Usage: node hammer.mjs <module> <slot-index> <user-pin> <label-prefix>
import pkcs11js from 'pkcs11js';

const [modulePath, slotIndex, pin, prefix] = process.argv.slice(2);
const p11 = new pkcs11js.PKCS11();
p11.load(modulePath);
p11.C_Initialize();
const slot = p11.C_GetSlotList(true)[Number(slotIndex)];
const s = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
p11.C_Login(s, pkcs11js.CKU_USER, pin);
for (let i = 0; ; i++) {
  try {
    p11.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_LABEL, value: `${prefix}-${i}` },
    ]);
  } catch (e) {
    process.stdout.write(`stopped: ${e.message}\n`);
    process.exit(0);
  }
  process.stdout.write(`acked ${prefix}-${i}\n`);
}
