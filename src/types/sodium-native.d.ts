/** The part of sodium-native Cordon uses (the package ships no types). */
declare module 'sodium-native' {
  export function crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}
