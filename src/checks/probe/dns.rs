//! DNS probes (`qu check add dns NAME HOSTNAME`): one query of one record
//! type, UP when the servers answer NOERROR with at least one record of
//! that type and, with `--expect`, when the answer holds every expected
//! value (a set: order and duplicates do not matter, other values may be
//! there too).
//!
//! The servers are the check's `--resolver`s, or those /etc/resolv.conf
//! names; the name is absolute (no search domains, no /etc/hosts). Over UDP,
//! with the query asked again over TCP when the answer comes truncated;
//! over TCP only with `--tcp`. Nothing is cached: every probe asks.
//!
//! How a record reads as a value (and so how `--expect` is written):
//!
//! | type | value | an expected value may also be |
//! |---|---|---|
//! | A, AAAA | the address: `192.0.2.7`, `2001:db8::7` | |
//! | CNAME, NS | the name: `www.example.com` | |
//! | MX | `10 mail.example.com` | the host: `mail.example.com` |
//! | TXT | its character-strings concatenated: `v=spf1 -all` | |
//! | SOA | `mname rname serial refresh retry expire minimum` | `mname` |
//! | SRV | `priority weight port target`: `10 5 443 web.example.com` | `target` |
//! | CAA | `0 issue "letsencrypt.org"` | the value: `letsencrypt.org` |
//!
//! Values and expected values are compared normalised (`normalise`):
//! lower-case, the dots that end a word dropped, spaces collapsed
//! (`Mail.Example.COM.` = `mail.example.com`). Names read in ASCII
//! (punycode for international names).
//!
//! Reasons: `NXDOMAIN`, `SERVFAIL` (or another response code: `REFUSED`,
//! …), `no answer` (NOERROR without a record of the type), `timeout (no
//! answer from 192.0.2.53:53)`, and for a mismatch `answer 10.0.0.9,
//! expected 10.0.0.7` (the answer's values sorted, at most five, then
//! `…`; the expected values missing from it).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::str::FromStr;

use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::resolver::{absolute_name, Resolvers};

/// The record types a DNS check may ask for.
pub const RECORD_TYPES: [&str; 9] = ["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "SRV", "CAA"];

/// How many of the answer's values a mismatch reason lists.
const SHOWN_VALUES: usize = 5;
/// How many characters of one value a reason shows.
const SHOWN_CHARS: usize = 100;

/// Asks `servers` (or the system's when empty) for the `record` records of
/// `name`; Ok when answered and holding every `expect`ed value.
pub async fn probe(
    resolvers: &Resolvers,
    name: &str,
    record: &str,
    expect: &[String],
    servers: &[SocketAddr],
    tcp: bool,
) -> Result<(), String> {
    let rtype = record_type(record)?;
    let qname = absolute_name(name)?;
    let lookup = resolvers
        .query(qname, rtype, servers, tcp)
        .await
        .map_err(|f| f.to_string())?;
    let answer: Vec<Value> = lookup
        .record_iter()
        .filter(|r| r.record_type() == rtype)
        .filter_map(|r| render(r.data()))
        .collect();
    if answer.is_empty() {
        return Err("no answer".into());
    }
    check(&answer, expect)
}

/// Normalises an expected value the way answers are normalised (for
/// validation/listing): lower-case, dots ending a word dropped, single
/// spaces.
pub fn normalise(value: &str) -> String {
    let words: Vec<&str> = value
        .split_whitespace()
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ").to_lowercase()
}

fn record_type(record: &str) -> Result<RecordType, String> {
    let unknown = || {
        format!(
            "unknown record type {record:?} (one of {})",
            RECORD_TYPES.join(", ")
        )
    };
    if !RECORD_TYPES.contains(&record) {
        return Err(unknown());
    }
    RecordType::from_str(record).map_err(|_| unknown())
}

/// One record as values: its full form and the shorter one an expected
/// value may match instead (MX, SOA, SRV, CAA). Both normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Value {
    full: String,
    short: Option<String>,
}

impl Value {
    fn new(full: String, short: Option<String>) -> Value {
        Value {
            full: normalise(&full),
            short: short.map(|s| normalise(&s)),
        }
    }

    fn matches(&self, expected: &str) -> bool {
        self.full == expected || self.short.as_deref() == Some(expected)
    }
}

fn name(n: &Name) -> String {
    n.to_ascii()
}

/// The value of one record of the asked types (None for other types).
fn render(data: &RData) -> Option<Value> {
    let value = match data {
        RData::A(a) => Value::new(a.0.to_string(), None),
        RData::AAAA(a) => Value::new(a.0.to_string(), None),
        RData::CNAME(c) => Value::new(name(&c.0), None),
        RData::NS(n) => Value::new(name(&n.0), None),
        RData::MX(mx) => Value::new(
            format!("{} {}", mx.preference(), name(mx.exchange())),
            Some(name(mx.exchange())),
        ),
        RData::TXT(txt) => {
            let bytes: Vec<u8> = txt.iter().flat_map(|s| s.iter().copied()).collect();
            Value::new(String::from_utf8_lossy(&bytes).into_owned(), None)
        }
        RData::SOA(soa) => Value::new(
            format!(
                "{} {} {} {} {} {} {}",
                name(soa.mname()),
                name(soa.rname()),
                soa.serial(),
                soa.refresh(),
                soa.retry(),
                soa.expire(),
                soa.minimum()
            ),
            Some(name(soa.mname())),
        ),
        RData::SRV(srv) => Value::new(
            format!(
                "{} {} {} {}",
                srv.priority(),
                srv.weight(),
                srv.port(),
                name(srv.target())
            ),
            Some(name(srv.target())),
        ),
        RData::CAA(caa) => {
            let value = String::from_utf8_lossy(caa.raw_value()).into_owned();
            Value::new(
                format!("{} {} \"{value}\"", caa.flags(), caa.tag().as_str()),
                Some(value),
            )
        }
        _ => return None,
    };
    Some(value)
}

/// Ok when every expected value is in the answer.
fn check(answer: &[Value], expect: &[String]) -> Result<(), String> {
    let missing: BTreeSet<String> = expect
        .iter()
        .map(|e| normalise(e))
        .filter(|e| !answer.iter().any(|v| v.matches(e)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let values: BTreeSet<&str> = answer.iter().map(|v| v.full.as_str()).collect();
    let mut shown: Vec<String> = values
        .iter()
        .take(SHOWN_VALUES)
        .map(|v| shorten(v))
        .collect();
    if values.len() > SHOWN_VALUES {
        shown.push("…".into());
    }
    let missing: Vec<String> = missing.iter().map(|v| shorten(v)).collect();
    Err(format!(
        "answer {}, expected {}",
        shown.join(", "),
        missing.join(", ")
    ))
}

fn shorten(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS {
        return value.to_string();
    }
    let mut s: String = value.chars().take(SHOWN_CHARS).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::{caa::CAA, A, AAAA, CNAME, MX, NS, SOA, SRV, TXT};

    fn n(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn full(data: RData) -> String {
        render(&data).unwrap().full
    }

    #[test]
    fn normalising_drops_case_trailing_dots_and_extra_spaces() {
        assert_eq!(normalise("Mail.Example.COM."), "mail.example.com");
        assert_eq!(normalise("10  Mail.Example.COM. "), "10 mail.example.com");
        assert_eq!(
            normalise("ns1.qu.test. hostmaster.qu.test. 1 2 3 4 5"),
            "ns1.qu.test hostmaster.qu.test 1 2 3 4 5"
        );
        assert_eq!(normalise("v=spf1 -all"), "v=spf1 -all");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn every_type_renders_as_documented() {
        assert_eq!(full(RData::A(A("192.0.2.7".parse().unwrap()))), "192.0.2.7");
        assert_eq!(
            full(RData::AAAA(AAAA("2001:DB8::7".parse().unwrap()))),
            "2001:db8::7"
        );
        assert_eq!(
            full(RData::CNAME(CNAME(n("WWW.Example.com.")))),
            "www.example.com"
        );
        assert_eq!(
            full(RData::NS(NS(n("ns1.example.com.")))),
            "ns1.example.com"
        );
        let mx = render(&RData::MX(MX::new(10, n("mail.example.com.")))).unwrap();
        assert_eq!(mx.full, "10 mail.example.com");
        assert_eq!(mx.short.as_deref(), Some("mail.example.com"));
        let txt = TXT::new(vec!["v=spf1 ".into(), "-all".into()]);
        assert_eq!(full(RData::TXT(txt)), "v=spf1 -all");
        let soa = SOA::new(
            n("ns1.example.com."),
            n("hostmaster.example.com."),
            2024010101,
            7200,
            900,
            1209600,
            300,
        );
        let soa = render(&RData::SOA(soa)).unwrap();
        assert_eq!(
            soa.full,
            "ns1.example.com hostmaster.example.com 2024010101 7200 900 1209600 300"
        );
        assert_eq!(soa.short.as_deref(), Some("ns1.example.com"));
        let srv = render(&RData::SRV(SRV::new(10, 5, 443, n("web.example.com.")))).unwrap();
        assert_eq!(srv.full, "10 5 443 web.example.com");
        assert_eq!(srv.short.as_deref(), Some("web.example.com"));
        let caa = CAA::new_issue(false, Some(n("letsencrypt.org")), vec![]);
        let caa = render(&RData::CAA(caa)).unwrap();
        assert_eq!(caa.full, "0 issue \"letsencrypt.org\"");
        assert_eq!(caa.short.as_deref(), Some("letsencrypt.org"));
    }

    fn values(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| Value::new(s.to_string(), None)).collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expectations_are_a_set_of_values_the_answer_holds() {
        let answer = values(&["10.0.0.2", "10.0.0.1"]);
        assert_eq!(check(&answer, &[]), Ok(()));
        assert_eq!(check(&answer, &strings(&["10.0.0.1"])), Ok(()));
        assert_eq!(
            check(&answer, &strings(&["10.0.0.1", "10.0.0.2", "10.0.0.1"])),
            Ok(())
        );
        assert_eq!(
            check(&values(&["10.0.0.9"]), &strings(&["10.0.0.7"])),
            Err("answer 10.0.0.9, expected 10.0.0.7".into())
        );
        assert_eq!(
            check(&answer, &strings(&["10.0.0.8", "10.0.0.1", "10.0.0.7"])),
            Err("answer 10.0.0.1, 10.0.0.2, expected 10.0.0.7, 10.0.0.8".into())
        );
    }

    #[test]
    fn short_forms_match_and_case_does_not_matter() {
        let mx = vec![Value::new(
            "10 Mail.Example.com.".into(),
            Some("Mail.Example.com.".into()),
        )];
        assert_eq!(check(&mx, &strings(&["mail.example.com"])), Ok(()));
        assert_eq!(check(&mx, &strings(&["10 MAIL.example.com."])), Ok(()));
        assert_eq!(
            check(&mx, &strings(&["20 mail.example.com"])),
            Err("answer 10 mail.example.com, expected 20 mail.example.com".into())
        );
        // A short form is not a substring match.
        assert!(check(&mx, &strings(&["example.com"])).is_err());
    }

    #[test]
    fn long_answers_are_cut_in_reasons() {
        let answer = values(&["a1", "a2", "a3", "a4", "a5", "a6", "a7"]);
        assert_eq!(
            check(&answer, &strings(&["b"])),
            Err("answer a1, a2, a3, a4, a5, …, expected b".into())
        );
        let long = "x".repeat(200);
        let e = check(&values(&[&long]), &strings(&["y"])).unwrap_err();
        assert_eq!(e, format!("answer {}…, expected y", "x".repeat(100)));
    }

    #[test]
    fn only_the_listed_record_types_are_asked() {
        for t in RECORD_TYPES {
            assert_eq!(record_type(t).unwrap().to_string(), t);
        }
        assert!(record_type("PTR").unwrap_err().contains("one of A, AAAA"));
        assert!(record_type("a").is_err());
    }
}
