//! ed25519 verification as the world's rule, for one signature or many at once.
//!
//! Every peer must reach the same verdict on every change, or replicas diverge (R1). The rule is
//! the *cofactored* equation `[8]([s]B − R − [k]A) = 0` with `k = SHA-512(R ‖ A ‖ message)`, plus
//! cheap strict checks on the encodings: `s < ℓ`, `R` in its canonical encoding and not of small
//! order, `A` a checked [`PublicKey`] (canonical, not of small order).
//!
//! Why cofactored: checking many signatures at once ([`verify_batch`]) is a random linear
//! combination of their equations, and only the cofactored equation makes that combination give
//! the same answer as checking each one alone. With the cofactorless equation (what
//! `ed25519_dalek::VerifyingKey::verify_strict` checks), a signature whose `R` carries a
//! small-order part fails alone but passes in a batch whenever the random weight cancels it (one
//! batch in eight), so whether a peer took a change would depend on which changes came with it.
//! The cofactored rule accepts a few more signatures than `verify_strict`, and only the key's owner
//! can make them: `k` covers `R`, so nobody else can turn a valid signature into another.
//!
//! A batch's random weights come from BLAKE3 over everything the batch checks, so they are fixed
//! only once every signature in it is; a forger would need 2^128 tries to make a bad signature
//! pass beside others.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use curve25519_dalek::{EdwardsPoint, Scalar};
use sha2::{Digest, Sha512};

use crate::PublicKey;

/// One signature to check: the signer, the signed message (in parts, as it is often a context
/// and some bytes), and the signature's 64 bytes.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Who signed.
    pub key: PublicKey,
    /// The message, as the concatenation of these parts.
    pub message: [&'a [u8]; 2],
    /// `R ‖ s`.
    pub signature: &'a [u8; 64],
}

/// A claim taken apart: the points and scalars of its equation.
struct Prepared {
    key: [u8; 32],
    /// R as the signature wrote it (canonical, checked), for the batch weights.
    r_bytes: [u8; 32],
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Checks one signature under the world's rule.
pub fn verify(claim: &Claim<'_>) -> bool {
    prepare(claim).is_some_and(|prepared| holds(&prepared))
}

/// Checks many signatures; the verdicts are those [`verify`] gives each alone (but for a chance
/// of 2^-128). All that hold cost one multi-scalar multiplication; when one fails, each is
/// checked alone to find which.
pub fn verify_batch(claims: &[Claim<'_>]) -> Vec<bool> {
    let prepared: Vec<Option<Prepared>> = claims.iter().map(prepare).collect();
    let candidates: Vec<&Prepared> = prepared.iter().flatten().collect();
    if candidates.len() > 1 && all_hold(&candidates) {
        return prepared.iter().map(Option::is_some).collect();
    }
    prepared.iter().map(|prepared| prepared.as_ref().is_some_and(holds)).collect()
}

/// The strict checks on the encodings, then `k`.
fn prepare(claim: &Claim<'_>) -> Option<Prepared> {
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&claim.signature[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&claim.signature[32..]);
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    if !canonical_y(&r_bytes) {
        return None;
    }
    // Small-order points with x = 0 are the only ones whose sign bit can be set wrongly, and
    // they are refused here too.
    let r = CompressedEdwardsY(r_bytes).decompress()?;
    if r.is_small_order() {
        return None;
    }
    let key = *claim.key.as_bytes();
    let a = claim.key.verifying_key().to_edwards();
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key);
    for part in claim.message {
        hash.update(part);
    }
    let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
    Some(Prepared { key, r_bytes, a, r, s, k })
}

/// Whether the 255 bits of y (the sign bit of x aside) are below p = 2^255 − 19: the encoding
/// that compressing a point gives.
fn canonical_y(bytes: &[u8; 32]) -> bool {
    let at_least_p = bytes[0] >= 0xed && bytes[1..31].iter().all(|byte| *byte == 0xff) && bytes[31] & 0x7f == 0x7f;
    !at_least_p
}

/// `[8]([s]B − R − [k]A) = 0` for one signature.
fn holds(prepared: &Prepared) -> bool {
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&prepared.k, &-prepared.a, &prepared.s);
    (sb_minus_ka - prepared.r).mul_by_cofactor().is_identity()
}

/// `[8]([Σ zᵢsᵢ]B − Σ zᵢRᵢ − Σ_A [Σ zᵢkᵢ]A) = 0`, with one term per distinct signer.
fn all_hold(batch: &[&Prepared]) -> bool {
    let weights = weights(batch);
    let mut scalars = Vec::with_capacity(batch.len() * 2 + 1);
    let mut points = Vec::with_capacity(batch.len() * 2 + 1);
    let mut base = Scalar::ZERO;
    for (prepared, weight) in batch.iter().zip(&weights) {
        base += weight * prepared.s;
        scalars.push(-weight);
        points.push(prepared.r);
    }
    scalars.push(base);
    points.push(ED25519_BASEPOINT_POINT);
    // Changes mostly come in runs by one author: one term per signer, not per signature.
    let mut signers: Vec<([u8; 32], EdwardsPoint, Scalar)> = Vec::new();
    for (prepared, weight) in batch.iter().zip(&weights) {
        let term = weight * prepared.k;
        match signers.iter_mut().find(|(key, _, _)| *key == prepared.key) {
            Some((_, _, sum)) => *sum += term,
            None => signers.push((prepared.key, prepared.a, term)),
        }
    }
    for (_, a, sum) in signers {
        scalars.push(-sum);
        points.push(a);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity()
}

/// 128-bit nonzero weights, one per signature, from a hash of every signature's R, s, A and k.
fn weights(batch: &[&Prepared]) -> Vec<Scalar> {
    let mut hasher = blake3::Hasher::new_derive_key("sanctuary ed25519 batch weights v1");
    for prepared in batch {
        hasher.update(&prepared.r_bytes);
        hasher.update(prepared.s.as_bytes());
        hasher.update(&prepared.key);
        hasher.update(prepared.k.as_bytes());
    }
    let mut stream = hasher.finalize_xof();
    batch
        .iter()
        .map(|_| {
            let mut bytes = [0u8; 16];
            stream.fill(&mut bytes);
            Scalar::from(u128::from_le_bytes(bytes).max(1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::Signer;
    use proptest::prelude::*;

    fn seed(n: u8) -> [u8; 32] {
        [n; 32]
    }

    fn sign(n: u8, message: &[u8]) -> (PublicKey, [u8; 64]) {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed(n));
        (PublicKey::from_secret_seed(&seed(n)), key.sign(message).to_bytes())
    }

    /// A signature only its owner can make: R carries a point of order 8, and s still answers
    /// k = H(R ‖ A ‖ M) for that R. The cofactorless equation refuses it; the cofactored one
    /// takes it.
    fn with_torsion(n: u8, message: &[u8], torsion: usize) -> (PublicKey, [u8; 64]) {
        // The secret scalar, as RFC 8032 derives it from the seed.
        let digest = Sha512::digest(seed(n));
        let mut clamped = [0u8; 32];
        clamped.copy_from_slice(&digest[..32]);
        clamped[0] &= 248;
        clamped[31] &= 127;
        clamped[31] |= 64;
        let secret = Scalar::from_bytes_mod_order(clamped);
        let key = PublicKey::from_secret_seed(&seed(n));
        let nonce = Scalar::from(u64::from(n) * 7919 + 13);
        let r = EdwardsPoint::mul_base(&nonce) + EIGHT_TORSION[torsion];
        let r_bytes = r.compress().to_bytes();
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key.as_bytes());
        hash.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&hash.finalize().into());
        let s = nonce + k * secret;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&r_bytes);
        signature[32..].copy_from_slice(s.as_bytes());
        (key, signature)
    }

    fn claim<'a>(key: PublicKey, message: &'a [u8], signature: &'a [u8; 64]) -> Claim<'a> {
        Claim { key, message: [b"", message], signature }
    }

    #[test]
    fn agrees_with_dalek_on_honest_signatures() {
        for n in 1..20u8 {
            let message = [n; 40];
            let (key, signature) = sign(n, &message);
            assert!(verify(&claim(key, &message, &signature)));
            let dalek = key.verifying_key();
            assert!(dalek.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature)).is_ok());
            // The message may come in any split.
            assert!(verify(&Claim { key, message: [&message[..7], &message[7..]], signature: &signature }));
        }
    }

    #[test]
    fn refuses_forgeries() {
        let message = b"a change";
        let (key, signature) = sign(1, message);
        let (other, _) = sign(2, message);
        assert!(!verify(&claim(other, message, &signature)), "another signer");
        assert!(!verify(&claim(key, b"another change", &signature)), "another message");
        for bit in [0, 100, 255, 256, 300, 511] {
            let mut flipped = signature;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!verify(&claim(key, message, &flipped)), "bit {bit} flipped");
        }
        // s + ℓ: the same scalar, but not its canonical encoding (s < ℓ < 2^253, so it fits).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut plus_l = signature;
        let mut carry = 0u16;
        for (byte, l) in plus_l[32..].iter_mut().zip(L) {
            let total = u16::from(*byte) + u16::from(l) + carry;
            *byte = total as u8;
            carry = total >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!verify(&claim(key, message, &plus_l)), "s + ℓ");
        // R of small order, and the all-zero signature.
        let mut small_r = signature;
        small_r[..32].copy_from_slice(EIGHT_TORSION[1].compress().as_bytes());
        assert!(!verify(&claim(key, message, &small_r)));
        assert!(!verify(&claim(key, message, &[0; 64])));
    }

    #[test]
    fn refuses_a_second_encoding_of_r() {
        // R = y + p for a small y whose point is not of small order: the same point, a second
        // encoding; refused even though it decompresses.
        let mut found = false;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let Some(point) = CompressedEdwardsY(canonical).decompress() else { continue };
            if point.is_small_order() {
                continue;
            }
            let mut second = [0xffu8; 32];
            second[0] = 0xed + y;
            second[31] = 0x7f;
            assert!(CompressedEdwardsY(second).decompress().is_some());
            assert!(!canonical_y(&second));
            assert!(canonical_y(&canonical));
            let (key, mut signature) = sign(3, b"m");
            signature[..32].copy_from_slice(&second);
            assert!(!verify(&claim(key, b"m", &signature)));
            found = true;
        }
        assert!(found, "some y below 19 is a point of large order");
    }

    #[test]
    fn torsion_in_r_is_owner_only_and_judged_alike_alone_and_together() {
        let message = b"owner-made";
        for torsion in 1..8 {
            let (key, signature) = with_torsion(4, message, torsion);
            let dalek = key.verifying_key();
            assert!(
                dalek.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature)).is_err(),
                "the cofactorless rule refuses R with torsion {torsion}"
            );
            assert!(verify(&claim(key, message, &signature)), "the cofactored rule takes it");
            let (honest_key, honest) = sign(5, message);
            let both = [claim(honest_key, message, &honest), claim(key, message, &signature)];
            assert_eq!(verify_batch(&both), [true, true], "and so does a batch");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Any mix of honest, owner-made torsion, forged and malformed signatures gets the same
        /// verdicts in a batch as one by one.
        #[test]
        fn a_batch_judges_each_as_alone(kinds in prop::collection::vec((0u8..5, 1u8..6, 0usize..8), 1..40)) {
            let messages: Vec<Vec<u8>> = kinds.iter().enumerate().map(|(i, _)| format!("change {i}").into_bytes()).collect();
            let signed: Vec<(PublicKey, [u8; 64])> = kinds
                .iter()
                .zip(&messages)
                .map(|((kind, signer, torsion), message)| match kind {
                    0 | 1 => sign(*signer, message),
                    2 => with_torsion(*signer, message, *torsion),
                    3 => {
                        let (key, mut signature) = sign(*signer, message);
                        signature[40] ^= 4;
                        (key, signature)
                    }
                    _ => {
                        let (_, signature) = sign(*signer, message);
                        (sign(signer + 10, message).0, signature)
                    }
                })
                .collect();
            let claims: Vec<Claim<'_>> =
                signed.iter().zip(&messages).map(|((key, signature), message)| claim(*key, message, signature)).collect();
            let alone: Vec<bool> = claims.iter().map(verify).collect();
            prop_assert_eq!(verify_batch(&claims), alone.clone());
            let expected: Vec<bool> = kinds.iter().map(|(kind, _, _)| *kind <= 2).collect();
            prop_assert_eq!(alone, expected);
        }
    }
}
