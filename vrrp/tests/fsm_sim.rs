//! The VRRP state machine with 2-3 routers in memory on a virtual clock.
//!
//! A tiny discrete-event simulator: every `SendAdvert` of one router is
//! delivered as `handle_advert` to every other live router it has a link to,
//! 1 µs later; the clock jumps to the next event (the earliest
//! `poll_timeout` of any router or the next delivery). Invariants checked on
//! every action: a router never adds its VIPs twice without removing them (nor
//! removes them twice), and after each step a live router holds its VIPs iff it
//! is Master.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hadns_vrrp::fsm::{Action, Advert, Params, Reason, State, Vrrp};
use hadns_vrrp::track::effective_priority;

const WIRE_DELAY: Duration = Duration::from_micros(1);
const SEC: Duration = Duration::from_secs(1);

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

struct Node {
    vrrp: Vrrp,
    /// Process alive (a killed router neither sends nor receives).
    alive: bool,
    vips: bool,
    /// Every action with the instant it was emitted.
    log: Vec<(Instant, Action)>,
}

struct Delivery {
    at: Instant,
    from: usize,
    to: usize,
    adv: Advert,
}

struct Sim {
    t0: Instant,
    now: Instant,
    nodes: Vec<Node>,
    /// link[i][j]: adverts from i reach j.
    link: Vec<Vec<bool>>,
    wire: Vec<Delivery>,
    /// (time, node, advert) for every advert delivered.
    delivered: Vec<(Instant, usize, Advert)>,
}

impl Sim {
    fn new(params: Vec<Params>) -> Sim {
        let t0 = Instant::now();
        let n = params.len();
        Sim {
            t0,
            now: t0,
            nodes: params
                .into_iter()
                .map(|p| Node {
                    vrrp: Vrrp::new(p, t0),
                    alive: true,
                    vips: false,
                    log: Vec::new(),
                })
                .collect(),
            link: vec![vec![true; n]; n],
            wire: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// Routers with these (priority, address) pairs, v3 at `interval`.
    fn routers(spec: &[(u8, u8)], interval: Duration) -> Sim {
        Sim::new(
            spec.iter()
                .map(|&(prio, last)| Params::new(7, prio, interval, ip(last)))
                .collect(),
        )
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    fn start(&mut self, i: usize) {
        self.nodes[i].alive = true;
        self.nodes[i].vrrp.handle_startup(self.now);
        self.drain();
    }

    fn shutdown(&mut self, i: usize) {
        self.nodes[i].vrrp.handle_shutdown(self.now);
        self.drain();
    }

    fn shutdown_graceful(&mut self, i: usize) {
        self.nodes[i].vrrp.handle_shutdown_graceful(self.now);
        self.drain();
    }

    /// SIGKILL: no more actions, VIPs left as they are (the runtime's VIP
    /// lifetime is not modelled here).
    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.wire.retain(|d| d.to != i && d.from != i);
    }

    fn set_priority(&mut self, i: usize, p: Option<u8>) {
        self.nodes[i].vrrp.handle_priority(p, self.now);
        self.drain();
    }

    fn cut(&mut self, a: usize, b: usize, connected: bool) {
        self.link[a][b] = connected;
        self.link[b][a] = connected;
    }

    fn state(&self, i: usize) -> State {
        self.nodes[i].vrrp.state()
    }

    fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].alive && self.state(i) == State::Master)
            .collect()
    }

    /// Process every queued action of every live router.
    fn drain(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].alive {
                continue;
            }
            while let Some(a) = self.nodes[i].vrrp.poll_action() {
                self.nodes[i].log.push((self.now, a));
                match a {
                    Action::AddVips => {
                        assert!(!self.nodes[i].vips, "router {i} added its VIPs twice");
                        self.nodes[i].vips = true;
                    }
                    Action::RenewVips => {
                        assert!(
                            self.nodes[i].vips,
                            "router {i} renewed VIPs it did not hold"
                        );
                    }
                    Action::RemoveVips => {
                        assert!(
                            self.nodes[i].vips,
                            "router {i} removed VIPs it did not hold"
                        );
                        self.nodes[i].vips = false;
                    }
                    Action::SendAdvert { priority } => {
                        let p = self.nodes[i].vrrp.params();
                        let adv = Advert {
                            src: p.primary_addr,
                            priority,
                            max_advert_int: p.advert_interval,
                        };
                        for to in 0..self.nodes.len() {
                            if to != i && self.link[i][to] {
                                self.wire.push(Delivery {
                                    at: self.now + WIRE_DELAY,
                                    from: i,
                                    to,
                                    adv,
                                });
                            }
                        }
                    }
                    Action::SendGratuitous | Action::StateChange { .. } => {}
                }
            }
            let n = &self.nodes[i];
            assert_eq!(
                n.vips,
                n.vrrp.state() == State::Master,
                "router {i} holds VIPs {} in state {:?}",
                n.vips,
                n.vrrp.state()
            );
        }
    }

    fn next_event(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.vrrp.poll_timeout());
        let wire = self.wire.iter().map(|d| d.at);
        timers.chain(wire).min()
    }

    /// One event step, but never past `until`. Returns false when the clock
    /// reached `until`.
    fn step(&mut self, until: Instant) -> bool {
        let next = match self.next_event() {
            Some(t) if t <= until => t,
            _ => {
                self.now = until;
                return false;
            }
        };
        assert!(next >= self.now, "an event in the past");
        self.now = next;
        let now = self.now;
        let (due, rest): (Vec<Delivery>, Vec<Delivery>) = std::mem::take(&mut self.wire)
            .into_iter()
            .partition(|d| d.at <= now);
        self.wire = rest;
        for d in due {
            // A link cut while the packet was in flight loses it.
            if self.nodes[d.to].alive && self.link[d.from][d.to] {
                self.nodes[d.to].vrrp.handle_advert(&d.adv, now);
                self.delivered.push((now, d.to, d.adv));
            }
        }
        self.drain();
        for i in 0..self.nodes.len() {
            if self.nodes[i].alive && self.nodes[i].vrrp.poll_timeout().is_some_and(|t| t <= now) {
                self.nodes[i].vrrp.handle_timeout(now);
            }
        }
        self.drain();
        true
    }

    fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        let mut steps = 0u64;
        while self.step(until) {
            steps += 1;
            assert!(steps < 10_000_000, "simulation does not advance");
        }
    }

    /// Runs until `cond` holds (checked after every step) or `d` elapsed;
    /// returns the instant it first held.
    fn run_until(&mut self, d: Duration, cond: impl Fn(&Sim) -> bool) -> Option<Instant> {
        let until = self.now + d;
        if cond(self) {
            return Some(self.now);
        }
        while self.step(until) {
            if cond(self) {
                return Some(self.now);
            }
        }
        None
    }

    /// Asserts that exactly `who` is master for `d` from now, checking after
    /// every step.
    fn hold(&mut self, d: Duration, who: usize) {
        let until = self.now + d;
        while self.step(until) {
            assert_eq!(self.masters(), vec![who], "at t={:?}", self.now - self.t0);
        }
        assert_eq!(self.masters(), vec![who]);
    }

    /// The instants router i changed state to `to`, with the reason.
    fn changes_to(&self, i: usize, to: State) -> Vec<(Instant, Reason)> {
        self.nodes[i]
            .log
            .iter()
            .filter_map(|(t, a)| match a {
                Action::StateChange { to: s, reason, .. } if *s == to => Some((*t, *reason)),
                _ => None,
            })
            .collect()
    }

    fn actions_between(&self, i: usize, from: Instant, to: Instant) -> Vec<Action> {
        self.nodes[i]
            .log
            .iter()
            .filter(|(t, _)| *t >= from && *t <= to)
            .map(|(_, a)| *a)
            .collect()
    }

    /// A position in router i's action log.
    fn mark(&self, i: usize) -> usize {
        self.nodes[i].log.len()
    }

    fn actions_since(&self, i: usize, mark: usize) -> Vec<Action> {
        self.nodes[i].log[mark..].iter().map(|(_, a)| *a).collect()
    }

    fn last_delivery_to(&self, i: usize) -> Option<Instant> {
        self.delivered
            .iter()
            .rev()
            .find(|(_, to, _)| *to == i)
            .map(|(t, _, _)| *t)
    }
}

fn skew(prio: u8, interval: Duration) -> Duration {
    interval * u32::from(256 - u16::from(prio)) / 256
}

fn mdi(prio: u8, interval: Duration) -> Duration {
    interval * 3 + skew(prio, interval)
}

/// Start everybody, let them converge and check `who` is the one master.
fn converge(sim: &mut Sim, interval: Duration, who: usize) {
    sim.start_all();
    let t = sim.run_until(interval * 5, |s| {
        s.masters().len() == 1 && s.state(who) == State::Master
    });
    assert!(t.is_some(), "no convergence; masters {:?}", sim.masters());
    // And it stays that way.
    sim.hold(interval * 10, who);
}

#[test]
fn highest_priority_wins_the_election() {
    let i = SEC;
    let mut sim = Sim::routers(&[(100, 1), (200, 2), (150, 3)], i);
    sim.start_all();
    assert!(sim.masters().is_empty());
    let t = sim
        .run_until(i * 10, |s| !s.masters().is_empty())
        .expect("a master");
    // RFC 5798 §6.4.2: the backup with the shortest Master_Down_Interval
    // (highest priority) fires first.
    assert_eq!(sim.masters(), vec![1]);
    assert_eq!(t - sim.t0, mdi(200, i));
    sim.hold(i * 20, 1);
    assert_eq!(sim.state(0), State::Backup);
    assert_eq!(sim.state(2), State::Backup);
    assert_eq!(sim.nodes[0].vrrp.master_addr(), Some(ip(2)));
    assert_eq!(sim.nodes[2].vrrp.master_addr(), Some(ip(2)));
    // The losers never touched their VIPs.
    for n in [0, 2] {
        assert!(!sim.nodes[n].log.iter().any(|(_, a)| *a == Action::AddVips));
    }
    assert_eq!(
        sim.changes_to(1, State::Master),
        vec![(t, Reason::MasterDown)]
    );
}

#[test]
fn equal_priority_highest_address_wins() {
    let i = SEC;
    let mut sim = Sim::routers(&[(100, 9), (100, 20), (100, 3)], i);
    sim.start_all();
    // All three time out together, and the adverts sort it out.
    sim.run_for(mdi(100, i) + Duration::from_millis(1));
    assert_eq!(sim.masters(), vec![1]);
    sim.hold(i * 10, 1);
    for n in [0, 2] {
        assert_eq!(sim.state(n), State::Backup);
        // Stepped down on hearing a higher address at equal priority.
        assert!(matches!(
            sim.changes_to(n, State::Backup).last().map(|c| c.1),
            Some(Reason::Preempted { priority: 100, .. })
        ));
        assert_eq!(sim.nodes[n].vrrp.master_addr(), Some(ip(20)));
    }
}

#[test]
fn address_comparison_is_unsigned() {
    // 200.0.0.1 > 10.0.0.2 as unsigned integers (a signed compare flips it).
    let i = SEC;
    let big = IpAddr::V4(Ipv4Addr::new(200, 0, 0, 1));
    let mut sim = Sim::new(vec![
        Params::new(7, 100, i, ip(2)),
        Params::new(7, 100, i, big),
    ]);
    converge(&mut sim, i, 1);
}

#[test]
fn preempt_takes_over_from_a_lower_priority_master() {
    let i = SEC;
    let mut sim = Sim::routers(&[(100, 1), (200, 2)], i);
    sim.start(0);
    sim.run_until(i * 5, |s| s.state(0) == State::Master)
        .expect("A master");
    let join = sim.now;
    sim.start(1);
    let t = sim
        .run_until(i * 10, |s| s.state(1) == State::Master)
        .expect("B preempts");
    // RFC 5798 §6.4.2: B discards A's adverts and Master_Down_Timer fires.
    assert_eq!(t - join, mdi(200, i));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.masters(), vec![1]);
    assert_eq!(
        sim.changes_to(1, State::Master)[0].1,
        Reason::Preempting {
            master: ip(1),
            priority: 100
        }
    );
    sim.hold(i * 10, 1);
}

#[test]
fn no_preempt_keeps_the_live_lower_master() {
    let i = SEC;
    let mut params = vec![Params::new(7, 100, i, ip(1)), Params::new(7, 200, i, ip(2))];
    params[1].preempt = false;
    let mut sim = Sim::new(params);
    sim.start(0);
    sim.run_until(i * 5, |s| s.state(0) == State::Master)
        .expect("A master");
    sim.start(1);
    sim.hold(i * 30, 0);
    assert_eq!(sim.state(1), State::Backup);
    // But it still takes over when A dies.
    sim.kill(0);
    let killed = sim.now;
    let t = sim
        .run_until(i * 10, |s| s.state(1) == State::Master)
        .expect("B takes over");
    assert!(t - killed <= mdi(200, i));
}

#[test]
fn preempt_delay_waits_before_taking_over() {
    let i = SEC;
    let delay = Duration::from_secs(7);
    let mut params = vec![Params::new(7, 100, i, ip(1)), Params::new(7, 200, i, ip(2))];
    params[1].preempt_delay = delay;
    let mut sim = Sim::new(params);
    sim.start(0);
    sim.run_until(i * 5, |s| s.state(0) == State::Master)
        .expect("A master");
    let join = sim.now;
    sim.start(1);
    // A stays the only master for the whole delay.
    sim.hold(delay, 0);
    let t = sim
        .run_until(i * 10, |s| s.state(1) == State::Master)
        .expect("B preempts after the delay");
    // The delay runs from the first advert B heard (within one interval of
    // joining), and B takes over as soon as it ends.
    let first_heard = sim
        .delivered
        .iter()
        .find(|(at, to, _)| *to == 1 && *at >= join)
        .map(|(at, _, _)| *at)
        .expect("B heard A");
    assert_eq!(t, first_heard + delay);
    assert!(t - join >= delay && t - join <= delay + i + WIRE_DELAY);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.masters(), vec![1]);
    sim.hold(i * 5, 1);
}

#[test]
fn preempt_delay_does_not_delay_master_loss() {
    let i = SEC;
    let mut params = vec![Params::new(7, 200, i, ip(1)), Params::new(7, 100, i, ip(2))];
    params[1].preempt_delay = Duration::from_secs(60);
    let mut sim = Sim::new(params);
    converge(&mut sim, i, 0);
    sim.kill(0);
    let last = sim.last_delivery_to(1).expect("B heard A");
    let t = sim
        .run_until(i * 10, |s| s.state(1) == State::Master)
        .expect("B takes over");
    assert_eq!(t - last, mdi(100, i));
}

#[test]
fn priority_zero_hands_over_within_skew_time() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    let t_shut = sim.now;
    let m = sim.mark(0);
    sim.shutdown(0);
    // The resigning master: priority-0 advert, then VIPs removed.
    assert_eq!(
        sim.actions_since(0, m),
        vec![
            Action::StateChange {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
        ]
    );
    let t = sim
        .run_until(i * 10, |s| s.state(1) == State::Master)
        .expect("B takes over");
    // RFC 5798 §6.4.2: Master_Down_Timer = Skew_Time.
    assert_eq!(t - t_shut, WIRE_DELAY + skew(100, i));
    assert!(t - t_shut < mdi(100, i) / 2);
    assert_eq!(
        sim.changes_to(1, State::Master)[0].1,
        Reason::PriorityZeroHeard { from: ip(1) }
    );
    // Start A again: it preempts B back.
    let t_restart = sim.now;
    sim.start(0);
    let t2 = sim
        .run_until(i * 10, |s| s.state(0) == State::Master)
        .expect("A back");
    assert_eq!(t2 - t_restart, mdi(200, i));
    sim.run_for(Duration::from_millis(1));
    assert_eq!(sim.masters(), vec![0]);
}

#[test]
fn shutdown_of_a_backup_is_silent() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    let m = sim.mark(1);
    sim.shutdown(1);
    let acts = sim.actions_since(1, m);
    assert_eq!(
        acts,
        vec![Action::StateChange {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(sim.nodes[1].vrrp.poll_timeout(), None);
    sim.hold(i * 10, 0);
}

#[test]
fn master_loss_takes_over_within_master_down_interval() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2), (150, 3)], i);
    converge(&mut sim, i, 0);
    sim.run_for(i / 3);
    let killed = sim.now;
    sim.kill(0);
    let last = sim.last_delivery_to(2).expect("C heard A");
    let t = sim
        .run_until(i * 10, |s| !s.masters().is_empty())
        .expect("a new master");
    // The higher of the two backups (shorter skew) wins.
    assert_eq!(sim.masters(), vec![2]);
    assert!(t > killed);
    assert_eq!(t - last, mdi(150, i));
    assert!(t - last >= i * 3, "took over before 3 intervals");
    sim.hold(i * 10, 2);
    assert_eq!(sim.state(1), State::Backup);
    assert_eq!(sim.nodes[1].vrrp.master_addr(), Some(ip(3)));
}

#[test]
fn partition_then_heal_leaves_exactly_one_master() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    sim.cut(0, 1, false);
    sim.run_until(i * 10, |s| s.masters().len() == 2)
        .expect("both become master while partitioned");
    sim.run_for(i * 5);
    assert_eq!(sim.masters(), vec![0, 1]);
    sim.cut(0, 1, true);
    let healed = sim.now;
    let t = sim
        .run_until(mdi(100, i), |s| s.masters() == vec![0])
        .expect("one master within one Master_Down_Interval of healing");
    assert!(t - healed <= i + WIRE_DELAY * 2);
    sim.hold(i * 10, 0);
    assert_eq!(
        sim.changes_to(1, State::Backup).last().map(|c| c.1),
        Some(Reason::Preempted {
            by: ip(1),
            priority: 200
        })
    );
}

#[test]
fn heal_answered_at_once_with_advert_and_gratuitous() {
    // The lower master's advert reaches the real master first: it answers at
    // once (advert + gratuitous) instead of waiting for its own timer.
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    sim.cut(0, 1, false);
    sim.run_until(i * 10, |s| s.masters().len() == 2)
        .expect("split");
    // Heal just after A's periodic advert, so B's comes first.
    let m = sim.mark(0);
    sim.run_until(i * 3, |s| {
        s.actions_since(0, m)
            .contains(&Action::SendAdvert { priority: 200 })
    })
    .expect("A advertises");
    sim.run_for(Duration::from_micros(10));
    sim.cut(0, 1, true);
    let healed = sim.now;
    let m = sim.mark(0);
    let t = sim
        .run_until(i * 2, |s| s.masters() == vec![0])
        .expect("converged");
    let a_acts = sim.actions_since(0, m);
    assert!(a_acts.contains(&Action::SendGratuitous), "{a_acts:?}");
    assert!(a_acts.contains(&Action::SendAdvert { priority: 200 }));
    // A answered B's advert within a wire hop; it did not wait for its timer.
    assert!(t - healed < i, "took {:?}", t - healed);
    sim.hold(i * 5, 0);
}

#[test]
fn track_weight_drop_moves_mastership_and_back() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (150, 2)], i);
    converge(&mut sim, i, 0);
    // A's web check fails: weight -100.
    let eff = effective_priority(200, &[(-100, false)]);
    assert_eq!(eff, Some(100));
    let t_drop = sim.now;
    let m = sim.mark(0);
    sim.set_priority(0, eff);
    // A advertises its new priority at once.
    assert_eq!(
        sim.actions_since(0, m),
        vec![Action::SendAdvert { priority: 100 }]
    );
    let t = sim
        .run_until(i * 10, |s| s.masters() == vec![1])
        .expect("B takes over");
    assert!(t - t_drop <= mdi(150, i) + WIRE_DELAY * 2);
    assert_eq!(sim.state(0), State::Backup);
    sim.hold(i * 10, 1);
    // The check recovers: A preempts again.
    let t_up = sim.now;
    sim.set_priority(0, effective_priority(200, &[(-100, true)]));
    let t2 = sim
        .run_until(i * 10, |s| s.masters() == vec![0])
        .expect("A preempts back");
    assert!(t2 - t_up <= i + mdi(200, i) + WIRE_DELAY * 2);
    sim.hold(i * 10, 0);
}

#[test]
fn fault_gives_up_mastership_and_returns() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    let t_fault = sim.now;
    let m = sim.mark(0);
    sim.set_priority(0, effective_priority(200, &[(0, false)]));
    assert_eq!(sim.state(0), State::Fault);
    let m_after = sim.mark(0);
    assert_eq!(
        sim.actions_since(0, m),
        vec![
            Action::StateChange {
                from: State::Master,
                to: State::Fault,
                reason: Reason::Fault
            },
            Action::SendAdvert { priority: 0 },
            Action::RemoveVips,
        ]
    );
    let t = sim
        .run_until(i * 10, |s| s.masters() == vec![1])
        .expect("B takes over");
    assert_eq!(t - t_fault, WIRE_DELAY + skew(100, i));
    // A stays silent in FAULT however long, and knows B is master.
    sim.hold(i * 30, 1);
    assert_eq!(sim.state(0), State::Fault);
    assert!(sim.actions_since(0, m_after).is_empty());
    assert_eq!(sim.nodes[0].vrrp.master_addr(), Some(ip(2)));
    // Recovery: Backup first, then A preempts the lower-priority B.
    let t_rec = sim.now;
    sim.set_priority(0, effective_priority(200, &[(0, true)]));
    assert_eq!(sim.state(0), State::Backup);
    assert_eq!(
        sim.changes_to(0, State::Backup).last().map(|c| c.1),
        Some(Reason::Recovered)
    );
    let t2 = sim
        .run_until(i * 10, |s| s.masters() == vec![0])
        .expect("A master again");
    assert!(t2 - t_rec <= mdi(200, i) + WIRE_DELAY * 2);
    sim.hold(i * 5, 0);
}

#[test]
fn fault_of_a_backup_and_master_loss_meanwhile() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    sim.set_priority(1, None);
    assert_eq!(sim.state(1), State::Fault);
    sim.kill(0);
    // Nobody may take over: B is in FAULT.
    sim.run_for(i * 10);
    assert!(sim.masters().is_empty());
    assert_eq!(
        sim.nodes[1].vrrp.master_addr(),
        None,
        "stale master forgotten"
    );
    let t_rec = sim.now;
    sim.set_priority(1, Some(100));
    let t = sim
        .run_until(i * 10, |s| s.masters() == vec![1])
        .expect("B master");
    assert_eq!(t - t_rec, mdi(100, i));
}

#[test]
fn v2_timers_use_whole_seconds_skew() {
    // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 s, independent of the
    // interval; Master_Down_Interval = 3 * Advertisement_Interval + Skew_Time.
    let i = Duration::from_secs(2);
    let mut params = vec![Params::new(7, 200, i, ip(1)), Params::new(7, 100, i, ip(2))];
    for p in &mut params {
        p.version = 2;
    }
    let mut sim = Sim::new(params);
    converge(&mut sim, i, 0);
    let v2_skew = SEC * 156 / 256;
    assert_eq!(sim.nodes[1].vrrp.skew_time(), v2_skew);
    assert_eq!(sim.nodes[1].vrrp.master_down_interval(), i * 3 + v2_skew);
    sim.kill(0);
    let last = sim.last_delivery_to(1).expect("heard");
    let t = sim
        .run_until(i * 10, |s| s.masters() == vec![1])
        .expect("takeover");
    assert_eq!(t - last, i * 3 + v2_skew);
}

#[test]
fn v3_ten_millisecond_intervals() {
    let i = Duration::from_millis(10);
    let mut sim = Sim::routers(&[(200, 1), (100, 2), (150, 3)], i);
    converge(&mut sim, i, 0);
    // Master loss: ~30 ms + skew.
    sim.kill(0);
    let last = sim.last_delivery_to(2).expect("heard");
    let t = sim
        .run_until(SEC, |s| !s.masters().is_empty())
        .expect("takeover");
    assert_eq!(sim.masters(), vec![2]);
    assert_eq!(t - last, mdi(150, i));
    assert!(t - last < Duration::from_millis(40));
    sim.hold(i * 20, 2);
    // Graceful handover: within the skew time, i.e. under one interval.
    let t_shut = sim.now;
    sim.shutdown(2);
    let t2 = sim
        .run_until(SEC, |s| s.masters() == vec![1])
        .expect("handover");
    assert_eq!(t2 - t_shut, WIRE_DELAY + skew(100, i));
    assert!(t2 - t_shut < i);
}

#[test]
fn backup_learns_the_masters_interval() {
    // RFC 5798 §6.4.2: Master_Adver_Interval comes from the master's adverts,
    // so a backup configured at 1 s detects a 10 ms master's loss in ~30 ms.
    let mut params = vec![
        Params::new(7, 200, Duration::from_millis(10), ip(1)),
        Params::new(7, 100, SEC, ip(2)),
    ];
    params[1].version = 3;
    let mut sim = Sim::new(params);
    converge(&mut sim, SEC, 0);
    assert_eq!(
        sim.nodes[1].vrrp.master_adver_interval(),
        Duration::from_millis(10)
    );
    sim.kill(0);
    let last = sim.last_delivery_to(1).expect("heard");
    let t = sim
        .run_until(SEC * 10, |s| s.masters() == vec![1])
        .expect("takeover");
    assert_eq!(t - last, mdi(100, Duration::from_millis(10)));
}

#[test]
fn address_owner_is_master_at_once() {
    let i = SEC;
    let mut sim = Sim::routers(&[(255, 1), (100, 2)], i);
    sim.start_all();
    // RFC 5798 §6.4.1: no waiting.
    assert_eq!(sim.masters(), vec![0]);
    assert_eq!(
        sim.changes_to(0, State::Master),
        vec![(sim.t0, Reason::Owner)]
    );
    sim.hold(i * 10, 0);
    // Owner restarts: B covers during the gap, the owner takes back at once.
    sim.shutdown(0);
    sim.run_until(i * 5, |s| s.masters() == vec![1])
        .expect("B covers");
    sim.run_for(i * 3);
    let t_start = sim.now;
    sim.start(0);
    assert_eq!(sim.state(0), State::Master);
    let t = sim
        .run_until(i, |s| s.masters() == vec![0])
        .expect("B steps down");
    assert_eq!(t - t_start, WIRE_DELAY);
    sim.hold(i * 10, 0);
}

#[test]
fn gratuitous_burst_and_repeat_on_becoming_master() {
    let i = SEC;
    let mut params = vec![Params::new(7, 200, i, ip(1))];
    params[0].garp_refresh = Duration::from_secs(30);
    let mut sim = Sim::new(params);
    sim.start(0);
    let t = sim
        .run_until(i * 5, |s| s.state(0) == State::Master)
        .expect("master");
    assert_eq!(
        sim.actions_between(0, t, t),
        vec![
            Action::StateChange {
                from: State::Backup,
                to: State::Master,
                reason: Reason::MasterDown
            },
            Action::AddVips,
            Action::SendAdvert { priority: 200 },
            Action::SendGratuitous,
        ]
    );
    sim.run_for(SEC * 65);
    let garps: Vec<Duration> = sim.nodes[0]
        .log
        .iter()
        .filter(|(_, a)| *a == Action::SendGratuitous)
        .map(|(at, _)| *at - t)
        .collect();
    // At once, 5 s later (garp_master_delay), then every 30 s.
    assert_eq!(
        garps,
        vec![
            Duration::ZERO,
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(60)
        ]
    );
    // And one advert per interval meanwhile.
    let adverts = sim.nodes[0]
        .log
        .iter()
        .filter(|(_, a)| matches!(a, Action::SendAdvert { .. }))
        .count();
    assert_eq!(adverts, 66);
}

#[test]
fn graceful_shutdown_hands_over_without_a_gap() {
    for i in [SEC, Duration::from_millis(10)] {
        let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
        converge(&mut sim, i, 0);
        let t_shut = sim.now;
        let m = sim.mark(0);
        sim.shutdown_graceful(0);
        // Resigns on the wire but keeps the VIPs for now.
        assert_eq!(
            sim.actions_since(0, m),
            vec![Action::SendAdvert { priority: 0 }]
        );
        assert_eq!(sim.state(0), State::Master);
        let until = sim.now + i * 10;
        while !sim.nodes[0].vrrp.is_stopped() {
            assert!(sim.step(until), "A never let go");
            assert!(
                sim.nodes.iter().any(|n| n.vips),
                "nobody holds the VIPs at {:?}",
                sim.now - t_shut
            );
        }
        let released = sim.now;
        let taken = sim.changes_to(1, State::Master)[0].0;
        // B takes over after Skew_Time; A lets go when B's advert arrives.
        assert_eq!(taken - t_shut, WIRE_DELAY + skew(100, i));
        assert_eq!(released - taken, WIRE_DELAY);
        assert_eq!(
            sim.actions_since(0, m)[1..],
            [
                Action::StateChange {
                    from: State::Master,
                    to: State::Initialize,
                    reason: Reason::Shutdown
                },
                Action::RemoveVips
            ]
        );
        sim.hold(i * 10, 1);
    }
}

#[test]
fn graceful_shutdown_alone_lets_go_after_master_down_interval() {
    let i = SEC;
    let mut sim = Sim::routers(&[(200, 1), (100, 2)], i);
    converge(&mut sim, i, 0);
    // B cannot hear A: nobody will take over.
    sim.cut(0, 1, false);
    let t_shut = sim.now;
    let m = sim.mark(0);
    sim.shutdown_graceful(0);
    let t = sim
        .run_until(i * 10, |s| s.nodes[0].vrrp.is_stopped())
        .expect("A lets go");
    assert_eq!(t - t_shut, mdi(200, i));
    // The resignation is repeated every interval meanwhile.
    let zeros = sim
        .actions_since(0, m)
        .iter()
        .filter(|a| **a == Action::SendAdvert { priority: 0 })
        .count();
    assert_eq!(zeros, 4);
    assert_eq!(sim.actions_since(0, m).last(), Some(&Action::RemoveVips));
    assert_eq!(sim.nodes[0].vrrp.poll_timeout(), None);
}
