//! SRV records -> the host list of an `sd: dns` backend, as lura's `sd/dnssrv` builds it:
//! only the records of the lowest priority are used; their weights are normalised and
//! reduced, then each host appears as many times as its weight, and the balancer spreads
//! requests over that list. Pure, so it unit-tests without DNS.

/// One SRV record as the resolver returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Presentation form with the trailing dot (`node1.service.consul.`), as Go returns it.
    pub target: String,
}

/// The expanded host list: `(target, port)` repeated by weight, in an interleaved order.
///
/// KrakenD (lura `dnssrv.resolve`): records are sorted by priority (ascending), weight
/// (descending), target and port; records with a priority above the first one's are
/// dropped (no failover to them, even when every preferred host is down); the weights go
/// through `compact` (`normalize`, then division by their greatest common divisor) and each
/// host is repeated that many times. A record whose weight comes out as 0 gets no traffic.
///
/// Two differences, both about order or a dead end, never about the share each host gets:
/// - lura lists a host's copies one after the other (and picks at random); we balance round
///   robin, so the copies are interleaved (smooth weighted round robin) to avoid bursts.
/// - When every weight is 0, lura's list is empty and every request fails with "no hosts
///   available"; RFC 2782 says such hosts are chosen evenly, so each gets weight 1.
pub fn hosts(mut records: Vec<SrvRecord>) -> Vec<(String, u16)> {
    records.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.weight.cmp(&a.weight))
            .then_with(|| a.target.cmp(&b.target))
            .then(a.port.cmp(&b.port))
    });
    let Some(first) = records.first().map(|r| r.priority) else {
        return Vec::new();
    };
    records.retain(|r| r.priority == first);
    let mut weights = compact(&records.iter().map(|r| r.weight).collect::<Vec<_>>());
    if weights.iter().all(|w| *w == 0) {
        weights.iter_mut().for_each(|w| *w = 1);
    }
    let total: u32 = weights.iter().map(|w| u32::from(*w)).sum();
    // Smooth weighted round robin (nginx): each step every host gains its weight, the
    // richest is picked and pays the total.
    let mut credit = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in credit.iter_mut().zip(&weights) {
            *c += i64::from(*w);
        }
        // The richest host with a weight; on a tie the earlier record.
        let pick = credit
            .iter()
            .zip(&weights)
            .enumerate()
            .filter(|(_, (_, w))| **w > 0)
            .max_by(|(ia, (ca, _)), (ib, (cb, _))| ca.cmp(cb).then(ib.cmp(ia)))
            .map(|(i, _)| i);
        let Some(i) = pick else { break };
        if let Some(c) = credit.get_mut(i) {
            *c -= i64::from(total);
        }
        if let Some(r) = records.get(i) {
            out.push((r.target.clone(), r.port));
        }
    }
    out
}

/// lura `compact`: normalise, then divide by the greatest common divisor when it is >= 2.
fn compact(ws: &[u16]) -> Vec<u16> {
    let tmp = normalize(ws);
    let div = tmp.iter().fold(0u16, |acc, &w| gcd(acc, w));
    if div < 2 {
        return tmp;
    }
    tmp.iter().map(|w| w / div).collect()
}

/// lura `normalize`: when the weights add up to more than max(100, number of records), scale
/// them to that total (integer division, so small weights may become 0).
fn normalize(ws: &[u16]) -> Vec<u16> {
    let scale = ws.len().max(100) as i64;
    let sum: i64 = ws.iter().map(|w| i64::from(*w)).sum();
    if sum <= scale {
        return ws.to_vec();
    }
    ws.iter()
        .map(|w| u16::try_from(i64::from(*w) * scale / sum).unwrap_or(u16::MAX))
        .collect()
}

fn gcd(mut a: u16, mut b: u16) -> u16 {
    while b > 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn count(list: &[(String, u16)], target: &str) -> usize {
        list.iter().filter(|(t, _)| t == target).count()
    }

    #[test]
    fn weights_repeat_hosts_after_reduction_by_their_gcd() {
        let l = hosts(vec![rec(1, 10, 80, "b."), rec(1, 30, 80, "a.")]);
        assert_eq!(l.len(), 4);
        assert_eq!(count(&l, "a."), 3);
        assert_eq!(count(&l, "b."), 1);
    }

    #[test]
    fn copies_are_interleaved_not_bunched() {
        let l = hosts(vec![rec(1, 2, 80, "a."), rec(1, 2, 80, "b.")]);
        // gcd 2: one copy each.
        assert_eq!(l.len(), 2);
        let l = hosts(vec![rec(1, 3, 80, "a."), rec(1, 2, 80, "b.")]);
        let names: Vec<&str> = l.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(names, ["a.", "b.", "a.", "b.", "a."]);
    }

    #[test]
    fn only_the_lowest_priority_is_used() {
        let l = hosts(vec![rec(20, 100, 80, "backup."), rec(10, 1, 81, "main.")]);
        assert_eq!(l, vec![("main.".to_string(), 81)]);
    }

    #[test]
    fn large_weights_are_normalised_to_one_hundred() {
        // sum 1000 > 100: 900 -> 90, 99 -> 9, 1 -> 0 (dropped); gcd 9 -> 10 and 1.
        let l = hosts(vec![
            rec(0, 900, 80, "a."),
            rec(0, 99, 80, "b."),
            rec(0, 1, 80, "c."),
        ]);
        assert_eq!(count(&l, "a."), 10);
        assert_eq!(count(&l, "b."), 1);
        assert_eq!(count(&l, "c."), 0);
    }

    #[test]
    fn zero_weights_alone_share_evenly() {
        let l = hosts(vec![rec(0, 0, 80, "a."), rec(0, 0, 81, "b.")]);
        assert_eq!(l.len(), 2);
        // A zero weight next to a positive one gets nothing (KrakenD).
        let l = hosts(vec![rec(0, 0, 80, "a."), rec(0, 5, 81, "b.")]);
        assert_eq!(l, vec![("b.".to_string(), 81)]);
    }

    #[test]
    fn no_records_give_no_hosts() {
        assert!(hosts(Vec::new()).is_empty());
    }
}
