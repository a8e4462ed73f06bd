//! Cycles of the wait graph (who waits on whom), found as the strongly
//! connected components of the ask edges (Tarjan). Pure.
//!
//! Invariant defended: every cycle is found, whatever the number of open asks
//! per agent, and each is reported once, its members in edge order starting
//! from the smallest session id (so the output is deterministic).

use std::collections::{BTreeMap, BTreeSet};

/// Every cycle of the directed graph `edges` (requester → target): each
/// strongly connected component with two or more members, or one member
/// waiting on itself.
pub fn cycles(edges: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for &(a, b) in edges {
        adj.entry(a).or_default().insert(b);
        adj.entry(b).or_default();
    }
    let mut t = Tarjan {
        adj: &adj,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for &v in adj.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    let mut out: Vec<Vec<String>> = t
        .out
        .into_iter()
        .filter(|c| c.len() > 1 || adj[c[0]].contains(c[0]))
        .map(|c| in_edge_order(&adj, c))
        .collect();
    out.sort();
    out
}

/// Members ordered by following edges from the smallest one.
fn in_edge_order(adj: &BTreeMap<&str, BTreeSet<&str>>, members: Vec<&str>) -> Vec<String> {
    let set: BTreeSet<&str> = members.iter().copied().collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    let mut at = *set.first().expect("non-empty component");
    loop {
        seen.insert(at);
        order.push(at.to_string());
        match adj[at]
            .iter()
            .find(|n| set.contains(*n) && !seen.contains(*n))
        {
            Some(n) => at = n,
            None => break,
        }
    }
    order.extend(
        set.iter()
            .filter(|m| !seen.contains(*m))
            .map(|m| m.to_string()),
    );
    order
}

struct Tarjan<'a> {
    adj: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    next: usize,
    out: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    // Recursion depth is bounded by the number of agents on one machine.
    fn visit(&mut self, v: &'a str) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for &w in &self.adj[v] {
            if !self.index.contains_key(w) {
                self.visit(w);
                let lw = self.low[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if self.on_stack.contains(w) {
                let iw = self.index[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if self.low[v] == self.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            self.out.push(comp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_two_and_three_cycles_and_self_waits() {
        assert!(cycles(&[]).is_empty());
        assert!(cycles(&[("a", "b"), ("b", "c")]).is_empty());
        assert_eq!(cycles(&[("b", "a"), ("a", "b")]), vec![vec!["a", "b"]]);
        assert_eq!(cycles(&[("a", "a")]), vec![vec!["a"]]);
        assert_eq!(
            cycles(&[
                ("c", "a"),
                ("a", "b"),
                ("b", "c"),
                ("d", "a"),
                ("x", "y"),
                ("y", "x")
            ]),
            vec![vec!["a", "b", "c"], vec!["x", "y"]]
        );
    }

    #[test]
    fn several_asks_per_agent_still_find_the_cycle() {
        // a waits on b and on d; only a → d → a closes.
        assert_eq!(
            cycles(&[("a", "b"), ("a", "d"), ("d", "a"), ("b", "e")]),
            vec![vec!["a", "d"]]
        );
    }
}
