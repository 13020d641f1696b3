//! The snapshot encoding carries every field of every record: records with every field set
//! apart from its default (`SnapshotRecords::sample`, which names each one) come back
//! identical. A field a record gains and the encoding forgets comes back as its default.

use pss_types::records::SnapshotRecords;
use pss_wire::format;

#[test]
fn every_field_of_every_record_survives_the_encoding() {
    let records = SnapshotRecords::sample();
    let bytes = format::encode(&records, 42);
    let (header, back) = format::decode(&bytes).expect("decodes");
    assert_eq!(header.id, 42);
    assert_eq!(format!("{back:#?}"), format!("{records:#?}"));
}
