//! Identities, references and hash text forms, with hand-derived vectors.

use weir_odf::*;

#[test]
fn multihash_text_form_is_base16_multibase_of_code_length_digest() {
    // SHA3-256("") = a7ffc6f8...; multihash = 0x16 (sha3-256), 0x20 (32 bytes), digest.
    let hash = Multihash::sha3_256(b"");
    assert_eq!(
        hash.to_multibase(),
        "f1620a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a"
    );
    assert_eq!(hash.to_multibase().parse::<Multihash>().unwrap(), hash);
}

#[test]
fn multihash_accepts_other_multibase_encodings() {
    let hash = Multihash::sha3_256(b"abc");
    let base58 = multibase_encode_base58(&hash.to_bytes());
    assert_eq!(base58.parse::<Multihash>().unwrap(), hash);
}

fn multibase_encode_base58(bytes: &[u8]) -> String {
    // base58btc, multibase prefix `z`, computed by repeated division.
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut out = String::from("z");
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|d| ALPHABET[*d as usize] as char));
    out
}

#[test]
fn bad_multihashes_are_errors() {
    assert!("f1620abcd".parse::<Multihash>().is_err());
    assert!("not-multibase!".parse::<Multihash>().is_err());
    assert!("f9920".parse::<Multihash>().is_err());
}

#[test]
fn dataset_id_is_did_odf_of_ed25519_multicodec_key() {
    let id = DatasetId::from_public_key([0x12; 32]);
    let text = id.to_did_string();
    assert_eq!(text, format!("did:odf:fed01{}", "12".repeat(32)));
    assert_eq!(text.parse::<DatasetId>().unwrap(), id);
    let spec_example =
        "did:odf:fed012126262ba49e1ba8392c26f7a39e1ba8d756c7469786d3365200c68402ff65dc";
    assert_eq!(
        spec_example.parse::<DatasetId>().unwrap().to_string(),
        spec_example
    );
}

#[test]
fn generated_ids_are_unique_and_match_their_key() {
    let (key, id) = DatasetId::new_generated();
    let (_, other) = DatasetId::new_generated();
    assert_ne!(id, other);
    assert_eq!(id.public_key(), &key.verifying_key().to_bytes());
}

#[test]
fn bad_dataset_ids_are_clear_errors() {
    let error = "did:key:fed01"
        .parse::<DatasetId>()
        .unwrap_err()
        .to_string();
    assert!(error.contains("did:odf:"), "{error}");
    let error = "did:odf:fed0112"
        .parse::<DatasetId>()
        .unwrap_err()
        .to_string();
    assert!(error.contains("32 bytes"), "{error}");
}

#[test]
fn names_are_case_insensitive() {
    let a: DatasetName = "NY-NewYork".parse().unwrap();
    let b: DatasetName = "ny-newyork".parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "NY-NewYork");
}

#[test]
fn alias_and_reference_grammar() {
    let alias: DatasetAlias = "statcan.gc.ca/census.2016.population".parse().unwrap();
    assert_eq!(alias.account_name.unwrap().as_str(), "statcan.gc.ca");
    for bad in ["", "a..b", "-a", "a-", "a_b", "a/b/c"] {
        assert!(
            bad.parse::<DatasetAlias>().is_err(),
            "{bad:?} must be rejected"
        );
    }
    let remote: DatasetRefAny = "data.gov/ny-newyork/public-safety.ems".parse().unwrap();
    assert!(
        matches!(remote, DatasetRefAny::RemoteAlias(ref r) if r.repo_name.as_str() == "data.gov")
    );
    let url: DatasetRefAny = "ipfs://bafkreie3hfshd4ikinnbio3kewo2hvj6doh5jp3p23iwk2evgo2un5g7km/"
        .parse()
        .unwrap();
    assert!(matches!(url, DatasetRefAny::Url(_)));
    let id_ref: DatasetRef = format!("did:odf:fed01{}", "ab".repeat(32)).parse().unwrap();
    assert!(matches!(id_ref, DatasetRef::Id(_)));
    let error = "bad name!".parse::<DatasetRef>().unwrap_err().to_string();
    assert!(
        error.contains("dataset name") && error.contains('!'),
        "{error}"
    );
}
