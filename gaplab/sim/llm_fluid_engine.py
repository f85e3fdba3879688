"""State and event handlers of the llm-fluid simulator; :func:`gaplab.sim.llm_fluid.simulate`
runs them and documents the rules."""

from __future__ import annotations

import math
import random
from collections import deque

import numpy as np

from gaplab.models.llm_fluid.instance import Instance
from gaplab.sim.llm_fluid_policies import Policy


class _IndexedSet:
    """A set of small integers with O(1) insert, remove and uniform random choice."""

    __slots__ = ("items", "pos")

    def __init__(self, capacity: int) -> None:
        self.items: list[int] = []
        self.pos = [-1] * capacity

    def add(self, g: int) -> None:
        if self.pos[g] < 0:
            self.pos[g] = len(self.items)
            self.items.append(g)

    def discard(self, g: int) -> None:
        k = self.pos[g]
        if k >= 0:
            last = self.items.pop()
            if last != g:
                self.items[k] = last
                self.pos[last] = k
            self.pos[g] = -1


class Engine:
    """State and event handlers of one run (rules: the :mod:`gaplab.sim.llm_fluid` docstring)."""

    def __init__(
        self,
        instance: Instance,
        policy: Policy,
        n: int,
        seed: int,
        pricing: str,
        check_every_event: bool,
    ) -> None:
        self.inst = instance
        self.policy = policy
        self.n = n
        self.rng = random.Random(seed)
        self.check = check_every_event
        size = instance.size
        self.size = size
        B = instance.batch_size
        self.B = B

        # GPUs 0..tracked-1 are followed one by one: with a partition they are the prefill
        # group, without one they are all GPUs. The rest form the solo pool.
        self.tracked = policy.partition_size(n)
        self.solo_capacity = B * (n - self.tracked) if policy.partition else 0
        self.decode_cap = B - 1 if policy.partition else B

        self.mu_p = list(instance.mu_prefill)
        self.mu_m = list(instance.mu_mixed)
        self.mu_s = list(instance.mu_solo)
        self.mu_hi = [max(a, b) for a, b in zip(self.mu_m, self.mu_s, strict=True)]
        self.accept_mixed = [a / h for a, h in zip(self.mu_m, self.mu_hi, strict=True)]
        self.accept_solo = [a / h for a, h in zip(self.mu_s, self.mu_hi, strict=True)]
        self.theta = list(instance.theta)
        self.arrival = [n * v for v in instance.lam]
        if pricing == "bundled":
            self.pay_prefill = [0.0] * size
            self.pay_decode = list(instance.bundled_price)
        else:
            self.pay_prefill = list(instance.price_prefill * instance.prompt)
            self.pay_decode = list(instance.price_decode * instance.output)

        self.target = [n * v for v in policy.prefill_target] if policy.prefill_target else []
        self.inv_target = [1.0 / v if v > 0 else 0.0 for v in policy.prefill_target]
        self.queue_target = (
            [n * v for v in policy.queue_target] if policy.queue_target else [0.0] * size
        )
        self.solo_share = list(policy.solo_share) if policy.solo_share else [1.0] * size

        # State.
        self.seq = 0
        self.prefill_queue: list[deque[int]] = [deque() for _ in range(size)]
        buffers = 2 if policy.router == "randomized" else 1
        self.buffers: list[list[deque[int]]] = [
            [deque() for _ in range(size)] for _ in range(buffers)
        ]
        self.in_prefill = [0] * size
        self.prefill_gpus: list[list[int]] = [[] for _ in range(size)]
        self.prefilling = [-1] * self.tracked
        self.decodes = [0] * self.tracked
        self.decodes_by_class = [[0] * size for _ in range(self.tracked)]
        self.decode_gpus: list[list[int]] = [[] for _ in range(size)]
        self.solo_pool = [0] * size
        self.solo_used = 0
        self.buffered = 0
        self.hold = policy.hold_prefills
        self.free_decode = _IndexedSet(self.tracked)
        self.free_prefill = _IndexedSet(self.tracked)
        for g in range(self.tracked):
            self._refresh(g)

        # Aggregated rates, kept up to date incrementally and recomputed at every sample.
        self.rate_abandon = 0.0
        self.rate_prefill = 0.0
        self.rate_tracked = 0.0
        self.rate_solo = 0.0
        self.revenue = 0.0
        self.events = 0
        self.violations: list[str] = []
        self.counts: dict[str, list[int]] = {
            key: [0] * size
            for key in (
                "arrivals",
                "prefill_abandons",
                "decode_abandons",
                "prefill_completions",
                "decode_completions",
            )
        }

    # ------------------------------------------------------------------ slots

    def _refresh(self, g: int) -> None:
        """Update GPU g's membership in the free-decode-slot and free-prefill-slot sets."""
        busy = self.decodes[g]
        prefill = self.prefilling[g] >= 0
        if self.policy.partition:
            can_decode = busy < self.decode_cap
            can_prefill = not prefill
        else:
            used = busy + (1 if prefill else 0)
            can_decode = used < self.B
            can_prefill = not prefill and used < self.B
        if can_decode:
            self.free_decode.add(g)
        else:
            self.free_decode.discard(g)
        if can_prefill:
            self.free_prefill.add(g)
        else:
            self.free_prefill.discard(g)

    def _choose_class(self) -> int:
        """Return the class whose head-of-line request starts a prefill, or -1."""
        if self.hold and self.buffered:
            return -1
        queues = self.prefill_queue
        admission = self.policy.admission

        if admission == "fcfs":
            best, head = -1, None
            for i in range(self.size):
                if queues[i] and (head is None or queues[i][0] < head):
                    best, head = i, queues[i][0]
            return best

        if admission == "priority":
            for i in self.policy.priority:
                if queues[i]:
                    return i
            return -1

        # Gate: lowest relative occupancy (X_i - n x_i*) / x_i*, ties to the longer queue
        # above its target. Classes with x_i* = 0 are never admitted.
        best, best_key = -1, (math.inf, 0.0)
        for i in range(self.size):
            if not queues[i] or self.inv_target[i] == 0.0:
                continue
            key = (
                (self.in_prefill[i] - self.target[i]) * self.inv_target[i],
                -(len(queues[i]) - self.queue_target[i]),
            )
            if key < best_key:
                best, best_key = i, key

        if best >= 0 and not self.policy.partition and self.in_prefill[best] >= self.target[best]:
            # Without a partition the gate is the only limit on prefills: it admits a class
            # only while its occupancy is below target.
            return -1
        return best

    def _start_prefills(self, prefer: int = -1) -> None:
        """Start prefills on free prefill slots while the admission rule picks a class."""
        free = self.free_prefill
        while free.items:
            i = self._choose_class()
            if i < 0:
                return
            g = (
                prefer
                if prefer >= 0 and free.pos[prefer] >= 0
                else free.items[int(self.rng.random() * len(free.items))]
            )
            prefer = -1
            self.prefill_queue[i].popleft()
            self.rate_abandon -= self.theta[i]
            self.prefilling[g] = i
            self.in_prefill[i] += 1
            self.prefill_gpus[i].append(g)
            self.rate_prefill += self.mu_p[i]
            self._refresh(g)

    def _place(self, g: int, i: int) -> None:
        """Start a class-i decode on tracked GPU g."""
        self.decodes[g] += 1
        self.decodes_by_class[g][i] += 1
        self.decode_gpus[i].append(g)
        self.rate_tracked += self.mu_hi[i]
        self._refresh(g)

    def _place_solo(self, i: int) -> None:
        self.solo_pool[i] += 1
        self.solo_used += 1
        self.rate_solo += self.mu_s[i]

    def _buffer(self, b: int, i: int, job: int) -> None:
        self.buffers[b][i].append(job)
        self.buffered += 1
        self.rate_abandon += self.theta[i]

    def _pop_buffer(self, b: int) -> int:
        """Remove the oldest request of buffer b; return its class, or -1 when empty."""
        best, head = -1, None
        for i, queue in enumerate(self.buffers[b]):
            if queue and (head is None or queue[0] < head):
                best, head = i, queue[0]
        if best >= 0:
            self.buffers[b][best].popleft()
            self.buffered -= 1
            self.rate_abandon -= self.theta[best]
        return best

    def _route(self, i: int) -> None:
        """Send a class-i request whose prefill finished to a decode slot or a buffer."""
        self.seq += 1
        job = self.seq  # buffers are FCFS in the order of entry
        free = self.free_decode.items
        if self.policy.router == "randomized":
            if self.rng.random() <= self.solo_share[i]:
                if self.solo_used < self.solo_capacity:
                    self._place_solo(i)
                else:
                    self._buffer(0, i, job)
            elif free:
                self._place(free[int(self.rng.random() * len(free))], i)
            else:
                self._buffer(1, i, job)
            return
        if any(self.buffers[0]):
            # Someone is already waiting, so no slot is free: keep FCFS order.
            self._buffer(0, i, job)
        elif self.solo_used < self.solo_capacity:
            self._place_solo(i)
        elif free:
            self._place(free[int(self.rng.random() * len(free))], i)
        else:
            self._buffer(0, i, job)

    # ------------------------------------------------------------------ events

    def _arrive(self, i: int) -> None:
        self.counts["arrivals"][i] += 1
        self.seq += 1
        self.prefill_queue[i].append(self.seq)
        self.rate_abandon += self.theta[i]
        if self.free_prefill.items:
            self._start_prefills()

    def _abandon(self, u: float) -> None:
        """Remove one waiting request; ``u`` is uniform on [0, rate_abandon)."""
        for i in range(self.size):
            for where, queue in self._waiting(i):
                weight = self.theta[i] * len(queue)
                if u < weight:
                    del queue[int(u / self.theta[i])]
                    self.rate_abandon -= self.theta[i]
                    if where < 0:
                        self.counts["prefill_abandons"][i] += 1
                    else:
                        self.counts["decode_abandons"][i] += 1
                        self.buffered -= 1
                        self._release_hold()
                    return
                u -= weight
        self.events -= 1  # rounding left no waiting request to remove

    def _release_hold(self) -> None:
        """Start held prefills once the decode buffers are empty."""
        if self.hold and not self.buffered and self.free_prefill.items:
            self._start_prefills()

    def _waiting(self, i: int) -> list[tuple[int, deque[int]]]:
        return [(-1, self.prefill_queue[i])] + [(b, buf[i]) for b, buf in enumerate(self.buffers)]

    def _finish_prefill(self, u: float) -> None:
        for i in range(self.size):
            weight = self.mu_p[i] * self.in_prefill[i]
            if u < weight:
                break
            u -= weight
        else:
            self.events -= 1
            return
        gpus = self.prefill_gpus[i]
        k = min(int(u / self.mu_p[i]), len(gpus) - 1)
        g = gpus[k]
        gpus[k] = gpus[-1]
        gpus.pop()
        self.in_prefill[i] -= 1
        self.rate_prefill -= self.mu_p[i]
        self.prefilling[g] = -1
        self.counts["prefill_completions"][i] += 1
        self.revenue += self.pay_prefill[i]

        if self.policy.coupled:
            self._place(g, i)  # the decode keeps the slot of its prefill
            self._start_prefills(prefer=g)
        elif self.policy.decode_first:
            self._refresh(g)
            self._route(i)
            self._start_prefills(prefer=g)
        else:
            self._refresh(g)
            self._start_prefills(prefer=g)
            self._route(i)

    def _finish_decode_tracked(self, u: float) -> None:
        for i in range(self.size):
            weight = self.mu_hi[i] * len(self.decode_gpus[i])
            if u < weight:
                break
            u -= weight
        else:
            self.events -= 1
            return
        gpus = self.decode_gpus[i]
        k = min(int(u / self.mu_hi[i]), len(gpus) - 1)
        g = gpus[k]
        accept = self.accept_mixed[i] if self.prefilling[g] >= 0 else self.accept_solo[i]
        if accept < 1.0 and self.rng.random() >= accept:
            self.events -= 1  # thinning: the faster clock rang but this stream is slower now
            return
        gpus[k] = gpus[-1]
        gpus.pop()
        self.rate_tracked -= self.mu_hi[i]
        self.decodes[g] -= 1
        self.decodes_by_class[g][i] -= 1
        self._complete(i)
        self._refresh(g)

        policy = self.policy
        if policy.coupled:
            self._start_prefills(prefer=g)
            return
        if not policy.decode_first:
            self._start_prefills(prefer=g)
        if self.free_decode.pos[g] >= 0:
            b = 1 if policy.router == "randomized" else 0
            j = self._pop_buffer(b)
            if j >= 0:
                self._place(g, j)
        if not policy.partition and policy.decode_first:
            self._start_prefills(prefer=g)
        self._release_hold()

    def _finish_decode_solo(self, u: float) -> None:
        for i in range(self.size):
            weight = self.mu_s[i] * self.solo_pool[i]
            if u < weight:
                break
            u -= weight
        else:
            self.events -= 1
            return
        self.solo_pool[i] -= 1
        self.solo_used -= 1
        self.rate_solo -= self.mu_s[i]
        self._complete(i)
        j = self._pop_buffer(0)
        if j >= 0:
            self._place_solo(j)
        self._release_hold()

    def _complete(self, i: int) -> None:
        self.counts["decode_completions"][i] += 1
        self.revenue += self.pay_decode[i]

    def fill(self, start: dict[str, np.ndarray]) -> None:
        """Load an initial state given per GPU; see ``simulate(start=...)``."""
        n = self.n
        for key in ("x", "y", "q_p"):
            values = np.asarray(start.get(key, np.zeros(self.size)), dtype=float)
            if values.shape != (self.size,) or (values < 0).any() or not np.isfinite(values).all():
                raise ValueError(f"start[{key!r}] must be {self.size} finite values >= 0")
        for i, mass in enumerate(start.get("q_p", np.zeros(self.size))):
            for _ in range(int(round(n * mass))):
                self.seq += 1
                self.prefill_queue[i].append(self.seq)
                self.counts["arrivals"][i] += 1
        free = self.free_prefill
        for i, mass in enumerate(start.get("x", np.zeros(self.size))):
            for _ in range(int(round(n * mass))):
                if not free.items:
                    break
                g = free.items[int(self.rng.random() * len(free.items))]
                self.prefilling[g] = i
                self.in_prefill[i] += 1
                self.prefill_gpus[i].append(g)
                self.counts["arrivals"][i] += 1
                self._refresh(g)
        decodes = [
            i
            for i, mass in enumerate(start.get("y", np.zeros(self.size)))
            for _ in range(int(round(n * mass)))
        ]
        self.rng.shuffle(decodes)
        for i in decodes:
            if self.solo_used < self.solo_capacity:
                self._place_solo(i)
            elif self.free_decode.items:
                items = self.free_decode.items
                self._place(items[int(self.rng.random() * len(items))], i)
            else:
                continue
            self.counts["arrivals"][i] += 1
            self.counts["prefill_completions"][i] += 1
        self._resync()
        self._start_prefills()

    # ------------------------------------------------------------------ main loop

    def _resync(self) -> None:
        """Recompute the aggregated rates from the counts, removing rounding drift."""
        size = range(self.size)
        self.rate_abandon = sum(
            self.theta[i] * sum(len(q) for _, q in self._waiting(i)) for i in size
        )
        self.rate_prefill = sum(self.mu_p[i] * self.in_prefill[i] for i in size)
        self.rate_tracked = sum(self.mu_hi[i] * len(self.decode_gpus[i]) for i in size)
        self.rate_solo = sum(self.mu_s[i] * self.solo_pool[i] for i in size)

    def _snapshot(self) -> tuple[np.ndarray, ...]:
        size = self.size
        by_gpu = np.array(self.decodes_by_class, dtype=float).reshape(self.tracked, size)
        mixed_mode = np.array(self.prefilling, dtype=int) >= 0
        y_m = by_gpu[mixed_mode].sum(axis=0)
        y_s = by_gpu[~mixed_mode].sum(axis=0) + np.array(self.solo_pool, dtype=float)
        q_p = np.array([len(q) for q in self.prefill_queue], dtype=float)
        q_d = np.array([sum(len(buf[i]) for buf in self.buffers) for i in range(size)], float)
        return q_p, np.array(self.in_prefill, dtype=float), q_d, y_m, y_s

    def _check_capacity(self, now: float) -> None:
        problems = []
        if sum(self.in_prefill) > self.tracked:
            problems.append(f"t={now:.1f}: {sum(self.in_prefill)} prefills on {self.tracked} GPUs")
        for g in range(self.tracked):
            used = self.decodes[g] + (0 if self.policy.partition else int(self.prefilling[g] >= 0))
            if used > self.decode_cap:
                problems.append(f"t={now:.1f}: GPU {g} holds {used} streams")
        if self.solo_used > self.solo_capacity:
            problems.append(f"t={now:.1f}: solo pool holds {self.solo_used} streams")
        for b, buf in enumerate(self.buffers):
            waiting = any(buf)
            if (
                waiting
                and self.policy.router == "greedy"
                and self.policy.decode_first
                and (self.free_decode.items or self.solo_used < self.solo_capacity)
            ):
                problems.append(f"t={now:.1f}: decode buffer {b} waits while a slot is free")
        self.violations.extend(problems[: 10 - len(self.violations)])

    def run(self, horizon: float, samples: int) -> tuple[np.ndarray, list, np.ndarray]:
        """Simulate until ``horizon``; return sample times, state snapshots and revenue so far."""
        uniform = self.rng.random
        log = math.log
        arrival = self.arrival
        last_class = len(arrival) - 1
        total_arrival = sum(arrival)
        step = horizon / samples
        next_sample = 0.0
        times: list[float] = []
        snapshots: list[tuple[np.ndarray, ...]] = []
        revenue_at: list[float] = []
        now = 0.0

        while True:
            total = (
                total_arrival
                + self.rate_abandon
                + self.rate_prefill
                + self.rate_tracked
                + self.rate_solo
            )
            # Exponential holding time; with no arrivals and an empty system nothing changes.
            now = now - log(1.0 - uniform()) / total if total > 0 else math.inf
            while now >= next_sample and next_sample <= horizon + 1e-9:
                times.append(next_sample)
                snapshots.append(self._snapshot())
                revenue_at.append(self.revenue)
                self._check_capacity(next_sample)
                self._resync()
                next_sample += step
            if now > horizon:
                break

            self.events += 1
            u = uniform() * total
            if u < total_arrival:
                i = 0
                while i < last_class and u >= arrival[i]:
                    u -= arrival[i]
                    i += 1
                self._arrive(i)
            else:
                u -= total_arrival
                if u < self.rate_abandon:
                    self._abandon(u)
                else:
                    u -= self.rate_abandon
                    if u < self.rate_prefill:
                        self._finish_prefill(u)
                    else:
                        u -= self.rate_prefill
                        if u < self.rate_tracked:
                            self._finish_decode_tracked(u)
                        else:
                            self._finish_decode_solo(u - self.rate_tracked)

            if self.check:
                self._check_capacity(now)
        return np.array(times), snapshots, np.array(revenue_at)
