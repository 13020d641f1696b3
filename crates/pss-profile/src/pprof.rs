//! A gzipped pprof `profile.proto` (github.com/google/pprof, `proto/profile.proto`), as
//! `go tool pprof`, Grafana Pyroscope and Parca read it: sample type `samples`/`count`;
//! each distinct chain of each thread one sample whose value is how many rounds found it,
//! labelled `thread_id` (a number) and `thread_name`; a location per address, its lines the
//! function and the calls inlined into it there (innermost first), each with its file and
//! line; a mapping per module.

use std::collections::HashMap;
use std::io::Write;
use std::time::UNIX_EPOCH;

use flate2::write::GzEncoder;
use prost::Message;

use super::{frame_name, Profile};
use pss_stack::Frame;

/// Encodes `profile` as a gzipped `profile.proto`.
pub fn encode(profile: &Profile) -> Vec<u8> {
    let proto = Builder::default().build(profile);
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&proto.encode_to_vec())
        .expect("writing to a Vec does not fail");
    gz.finish().expect("writing to a Vec does not fail")
}

/// The messages of `profile.proto` this writer fills (field numbers as upstream's).
mod proto {
    /// `Profile`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "12")]
        pub period: i64,
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
    }

    /// `ValueType`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// `Sample`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// `Label`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(int64, tag = "1")]
        pub key: i64,
        #[prost(int64, tag = "2")]
        pub str: i64,
        #[prost(int64, tag = "3")]
        pub num: i64,
    }

    /// `Mapping`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Mapping {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub memory_start: u64,
        #[prost(uint64, tag = "3")]
        pub memory_limit: u64,
        #[prost(uint64, tag = "4")]
        pub file_offset: u64,
        #[prost(int64, tag = "5")]
        pub filename: i64,
        #[prost(int64, tag = "6")]
        pub build_id: i64,
        #[prost(bool, tag = "7")]
        pub has_functions: bool,
        #[prost(bool, tag = "8")]
        pub has_filenames: bool,
        #[prost(bool, tag = "9")]
        pub has_line_numbers: bool,
        #[prost(bool, tag = "10")]
        pub has_inline_frames: bool,
    }

    /// `Location`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        #[prost(uint64, tag = "3")]
        pub address: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    /// `Line`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// `Function`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
    }
}

/// Fills a [`proto::Profile`], each string, function, location and mapping once.
#[derive(Default)]
struct Builder {
    out: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(i64, i64), u64>,
    /// Locations by address and the names found there (an address is named the same in
    /// every chain, but a frame pointer found without a module may not be).
    locations: HashMap<(u64, Vec<u64>), u64>,
    mappings: HashMap<String, usize>,
}

impl Builder {
    fn build(mut self, p: &Profile) -> proto::Profile {
        self.string("");
        let samples = proto::ValueType {
            r#type: self.string("samples"),
            unit: self.string("count"),
        };
        self.out.sample_type = vec![samples.clone()];
        self.out.period_type = Some(samples);
        self.out.period = 1;
        self.out.time_nanos = p
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        self.out.duration_nanos = p.duration.as_nanos() as i64;
        let comment = format!(
            "pss stack {} ({}): {} rounds every {} ms",
            p.pid,
            p.process_name.to_string_lossy(),
            p.rounds,
            p.interval.as_millis()
        );
        self.out.comment = vec![self.string(&comment)];
        let (tid_key, name_key) = (self.string("thread_id"), self.string("thread_name"));
        for s in &p.stacks {
            let location_id = chunks(&s.frames)
                .map(|frames| self.location(frames))
                .collect();
            let name = self.string(&s.thread_name.to_string_lossy());
            self.out.sample.push(proto::Sample {
                location_id,
                value: vec![s.count as i64],
                label: vec![
                    proto::Label {
                        key: tid_key,
                        num: i64::from(s.thread_id),
                        ..Default::default()
                    },
                    proto::Label {
                        key: name_key,
                        str: name,
                        ..Default::default()
                    },
                ],
            });
        }
        self.out
    }

    /// The index of `s` in the string table.
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.strings.get(s) {
            return i;
        }
        let i = self.out.string_table.len() as i64;
        self.out.string_table.push(s.to_owned());
        self.strings.insert(s.to_owned(), i);
        i
    }

    /// The location of `frames`: one address, innermost inlined call first.
    fn location(&mut self, frames: &[Frame]) -> u64 {
        let lines: Vec<proto::Line> = frames
            .iter()
            .map(|f| proto::Line {
                function_id: self.function(f),
                line: f.line.map_or(0, i64::from),
            })
            .collect();
        let key = (
            frames[0].address,
            lines.iter().map(|l| l.function_id).collect(),
        );
        if let Some(&id) = self.locations.get(&key) {
            return id;
        }
        let id = self.out.location.len() as u64 + 1;
        let mapping_id = self.mapping(&frames[0]);
        self.out.location.push(proto::Location {
            id,
            mapping_id,
            address: frames[0].address,
            line: lines,
        });
        self.locations.insert(key, id);
        id
    }

    /// The function `f` is in (by name and file).
    fn function(&mut self, f: &Frame) -> u64 {
        let name = self.string(&frame_name(f));
        let file = match &f.file {
            Some(file) => self.string(&file.to_string_lossy()),
            None => 0,
        };
        if let Some(&id) = self.functions.get(&(name, file)) {
            return id;
        }
        let id = self.out.function.len() as u64 + 1;
        self.out.function.push(proto::Function {
            id,
            name,
            system_name: name,
            filename: file,
        });
        self.functions.insert((name, file), id);
        id
    }

    /// The mapping of `f`'s module (0: none), its span widened to every address seen.
    fn mapping(&mut self, f: &Frame) -> u64 {
        let (Some(module), Some(offset)) = (&f.module, f.module_offset) else {
            return 0;
        };
        let start = f.address - offset;
        let path = module.to_string_lossy().into_owned();
        if let Some(&i) = self.mappings.get(&path) {
            let m = &mut self.out.mapping[i];
            m.memory_start = m.memory_start.min(start);
            m.memory_limit = m.memory_limit.max(f.address + 1);
            if f.line.is_some() {
                m.has_line_numbers = true;
                m.has_filenames = true;
            }
            return m.id;
        }
        let filename = self.string(&path);
        let id = self.out.mapping.len() as u64 + 1;
        self.out.mapping.push(proto::Mapping {
            id,
            memory_start: start,
            memory_limit: f.address + 1,
            filename,
            has_functions: true,
            has_filenames: f.file.is_some(),
            has_line_numbers: f.line.is_some(),
            has_inline_frames: true,
            ..Default::default()
        });
        self.mappings.insert(path, self.out.mapping.len() - 1);
        id
    }
}

/// `frames` cut into one run per address: the calls inlined at it, then the function
/// they were inlined into.
fn chunks(frames: &[Frame]) -> impl Iterator<Item = &[Frame]> {
    let mut rest = frames;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = rest
            .iter()
            .position(|f| !f.inlined)
            .map_or(rest.len(), |i| i + 1);
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}
