//! Any text as an `Encrypt` value, and any bytes as ciphertext: decryption may fail, never
//! panic; anything that decrypts must re-encrypt and decrypt to the same message.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use wemp_proto::Cipher;

fuzz_target!(|data: &[u8]| {
    let cipher = Cipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2").unwrap();
    let _ = cipher.decrypt(&String::from_utf8_lossy(data));
    // Raw bytes as ciphertext reach the AES, padding and length-field paths.
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    if let Ok(msg) = cipher.decrypt(&b64) {
        let again = cipher.encrypt(&msg, [0; 16]).unwrap();
        assert_eq!(cipher.decrypt(&again).unwrap(), msg);
    }
});
