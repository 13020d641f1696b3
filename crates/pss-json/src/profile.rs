//! The profile document (`pss stack --samples N --json`, `docs/json.md`, "pss stack
//! --samples"): each thread with its distinct call chains, most sampled first.

use pss_profile::{Profile, SampledStack};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::doc::{object, text, Each};
use crate::stack::FrameDoc;

/// The document for `profile`.
pub fn profile(profile: &Profile) -> impl Serialize + '_ {
    let threads = profile
        .by_thread()
        .into_iter()
        .map(|(_, stacks)| ThreadSamples { stacks })
        .collect();
    Document { profile, threads }
}

struct Document<'a> {
    profile: &'a Profile,
    threads: Vec<ThreadSamples<'a>>,
}

/// One thread's chains, most sampled first (never empty).
struct ThreadSamples<'a> {
    stacks: Vec<&'a SampledStack>,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let p = self.profile;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("schema_version", &crate::SCHEMA_VERSION)?;
        m.serialize_entry("pid", &p.pid)?;
        m.serialize_entry("name", &text(&p.process_name))?;
        m.serialize_entry("rounds", &p.rounds)?;
        m.serialize_entry("interval_us", &pss::units::micros(p.interval))?;
        m.serialize_entry("duration_us", &pss::units::micros(p.duration))?;
        m.serialize_entry("longest_stop_us", &pss::units::micros(p.longest_stop))?;
        m.serialize_entry("threads_stopped", &p.threads_stopped)?;
        m.serialize_entry("threads", &self.threads)?;
        m.serialize_entry("warnings", &p.warnings)?;
        m.end()
    }
}

impl Serialize for ThreadSamples<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let first = self.stacks[0];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("tid", &first.thread_id)?;
        m.serialize_entry("name", &text(&first.thread_name))?;
        m.serialize_entry("samples", &self.stacks.iter().map(|s| s.count).sum::<u64>())?;
        m.serialize_entry("stacks", &Each(&self.stacks, |s| Chain(s)))?;
        m.end()
    }
}

object!(Chain(SampledStack) |s| {
    "count": s.count,
    "frames": Each(&s.frames, FrameDoc),
});
