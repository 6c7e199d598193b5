/*
 * The allocation protocol of Drydock over GraphQL, checked by spin: see docs/model-check.md for
 * what it covers, what it leaves out, and which code each step stands for.
 *
 * Server processes claim jobs from the durable queue and run them: the scheduling pass of the
 * resource type, lease updates, resource updates. Clients request leases (one of them a gang),
 * release them or let them expire; an operator pokes a waiting lease (update-lease) and a health
 * check breaks a resource; a server may crash at any step, its transaction rolled back and its
 * job claims left to expire and be taken over.
 *
 * A transaction is its locks, taken step by step and blocking as PostgreSQL does, and one atomic
 * commit step that re-checks what the code re-checks and applies every write. Nobody sees an
 * uncommitted write, so applying them all at the commit is the same to every other process.
 *
 * Broken variants, each of which the checker must reject (test/model-check/broken-variants.test.ts):
 *   NO_TURN          the pass does not take its type's turn (the ResourceTypeQueue row lock)
 *   UNCHECKED_SLOTS  slot keys inserted one by one, ON CONFLICT DO NOTHING, count not checked
 *   PARTIAL_GANG     a gang's parts are granted as they fit, not all or none
 *   NO_RECHECK       the pass writes a grant without re-checking the planned resource (StalePlan)
 *   REACQUIRE_GANG   a gang part whose resource was lost goes back to PENDING (no releaseGang)
 *   NO_LEASE_LOCK    the lease update writes without taking the lease's row lock
 *   NO_SWEEP         no sweep: a wake-up lost to a crash is never recovered
 *   NO_RERUN         a pass asked for while it runs is not run again (the job's rerun flag lost)
 *   NEWEST_FIRST     the pass takes the queue newest first instead of in policy order
 *   NO_SKIP_RETRY    a pass that skipped a head locked by another transaction does not look again
 *   ALWAYS_AGAIN     every pass asks for another pass (a livelock, for the cycle check)
 *   NO_MARK          a change that may free capacity does not mark the pass job (with EPOCH)
 *   SKIP_STALE       the pass skips in its epoch even when the pool it reads shows a newer mark
 *   NO_REOFFER       (with MIDPASS) a lease whose try finds capacity that a lease of its shape
 *                    refused a moment before could use keeps it: no probe, no re-offer
 *   NO_GANG_REOFFER  (with MIDPASS) a gang whose parts find capacity that a single lease refused
 *                    a moment before could use keeps it
 *   MARK_BEFORE_TRY  (with EPOCH and MIDPASS) a try behind skipped leases is judged by the mark
 *                    read before its statements only: a release landing during them goes to it
 *
 * -DEPOCH adds the capacity epoch (scheduler/capacity-epoch.ts): a pass plans a lease whose
 * patient wait was recorded in the current epoch as refused, without trying it. Without it, the
 * model is the protocol with every wait tried by every pass (an epoch that always moves on).
 *
 * -DMIDPASS: each try reads the pool afresh, as the code's does (READ COMMITTED), in a step of its
 * own, so a release may commit between two tries of one pass; and the pass probes and re-offers as
 * scheduler/in-order.ts InOrderTries.serve does (see planMid). Without it a pass reads the pool once. With
 * -DEPOCH as well, each step reads the capacity mark too, and skipped leases go back into the
 * order once a view shows a newer one (retryPassedOver).
 */
#ifndef PROBE_ROUNDS
#define PROBE_ROUNDS 4 /* scheduler/in-order.ts PROBE_ROUNDS */
#endif
/* -DNO_HEALTH: no failing health check (a search a few times smaller; not a fault of the protocol). */
/* A view read now shows a capacity mark other than the one the pass's turn read (-DEPOCH). */
#ifdef SKIP_STALE
#define STALE_VIEW 0
#else
#define STALE_VIEW st[me]
#endif
#ifdef MIDPASS
/* A grant moves what was passed over since the last one to before it (see grantTry). */
#define GANG_SERVED served++; passedOld = passedOld | passed; passed = 0
#else
#define GANG_SERVED skip
#endif
#ifdef MIDPASS
#define GANG_TRY gangTry()
#else
#define GANG_TRY q = q + 2
#endif

/* ---- configuration ---- */
#ifndef NP
#define NP 2 /* server processes */
#endif
#ifndef MAXCRASH
#define MAXCRASH 1 /* crashes (servers, or the API's process before its wake-up) per run */
#endif
#ifndef MAXSTALL
#define MAXSTALL 1 /* claims that expire while their server still runs the job (a long pause) */
#endif

/*
 * Leases of one resource type, all of owner 1 with a quota of QUOTA1 live leases:
 *   L0 wants any resource (-DL0_EXCLUSIVE: the exclusive one), holds it until its until passes;
 *   L1 + L2 are one gang (L1 any resource, L2 the exclusive one), released by their client.
 * -DBIG adds L3, of owner 2, wanting the exclusive resource, released by its client
 * (-DL3_OTHER_SHAPE: asked for with other attributes than L0's, so that neither is of the other's
 * shape for the probes of -DMIDPASS, as two requests that name different attributes the exclusive
 * resource has are in the code).
 */
#ifdef BIG
#define NL 4
#else
#define NL 3
#endif
#define DEM_X 0 /* only the exclusive resource R0 (attributes only it has) */
#define DEM_A 1 /* any resource of the type */
#define DEM_Y 2 /* only R0 as well, asked for with other attributes: another shape (-DL3_OTHER_SHAPE) */
#ifdef L3_OTHER_SHAPE
#define DEMAND3 DEM_Y
#else
#define DEMAND3 DEM_X
#endif
#ifdef L0_EXCLUSIVE
#define DEMAND(i) (((i) == 3) -> DEMAND3 : (((i) == 0 || (i) == 2) -> DEM_X : DEM_A))
#else
#define DEMAND(i) (((i) == 3) -> DEMAND3 : (((i) == 2) -> DEM_X : DEM_A))
#endif
#define OWNER(i) (((i) == 3) -> 2 : 1)
/* A lease of DEMAND(k) could use resource g (planLease's choices): R0, or any if it takes any. */
#define COULD_USE(k, g) ((g) == 0 || DEMAND(k) == DEM_A)
#ifndef QUOTA1
#define QUOTA1 2
#endif
#define G1 1
#define G2 2
#define GANG(i) ((i) == G1 || (i) == G2)
#define SIBLING(i) (((i) == G1) -> G2 : G1)
#define HAS_UNTIL(i) ((i) == 0)

/*
 * Resources: R0 is exclusive (one lease at a time, slot key working-copy.lease(R0)), ACTIVE from
 * the start, its leases activated at once. R1 and R2 are what a blueprint with a concurrent-
 * resource limit of one allocates (slot key allocator(B).limit(0)): shared by any number of
 * leases, each ACQUIRED first and activated by its own update.
 */
#define NR 3
#define NORES 7
#define NEWRES 5 /* in a plan: the resource this pass allocates */

/* Lease statuses (drydock-spec.md "Statuses"); NONE = not requested yet. */
#define NONE 0
#define PENDING 1
#define ACQUIRED 2
#define ACTIVE 3
#define RELEASED 4
#define BROKEN 5
#define DESTROYED 6
/* Resource statuses here: NONE (not allocated), ACTIVE, DESTROYED (broken, then destroyed). */

#define LIVE(s) ((s) == PENDING || (s) == ACQUIRED || (s) == ACTIVE)
#define HELD(s) ((s) == ACQUIRED || (s) == ACTIVE)

/* Jobs: the type's scheduling pass, one update per lease, one per resource. */
#define JPASS 0
#define JLEASE(i) (1 + (i))
#define JRES(r) (1 + NL + (r))
#define NJ (1 + NL + NR)
#define JNONE 0
#define JDELAYED 1 /* runAt in the future: a lease's until */
#define JDUE 2
#define DEAD 9 /* claimed by a server that crashed: the claim expires, anyone may take the job */

/* ---- the database ---- */
byte ls[NL];     /* Lease.status */
byte lres[NL];   /* Lease.resourceId */
byte qk[NL];     /* arrival order (Lease.id; a gang's parts are one unit) */
bit lcmd[NL];    /* an unconsumed RELEASE command */
bit lexp[NL];    /* its until has passed */
byte rs[NR];     /* Resource.status */
bit rbreak[NR];  /* its health check failed */
byte key0;       /* SlotLock working-copy.lease(R0): owner lease + 1, 0 = free */
byte keyLimit;   /* SlotLock allocator(B).limit(0): owner resource, 0 = free */
byte jex[NJ];    /* Job row: none, delayed, due */
byte jlock[NJ];  /* Job.lockedBy: 0, a server, or DEAD */
bit jrerun[NJ];  /* Job.rerun */
bit jknown[NJ];  /* a wake-up for it reached the workers (notify, timer, sweep) */
/*
 * The capacity epoch (scheduler/capacity-epoch.ts). In the code a mark is the id of the
 * transaction that wrote it, and the queue row keeps the mark its epoch moved on for. Here only
 * what a pass compares is kept, as bits: whether the job's mark is not the queue's (jnew), and for
 * server p's pass whether the mark it read was not the queue's (rd[p]) and whether a mark came
 * after its read (st[p]).
 */
bit jnew;
bit hasRead[NP + 1]; /* server p's pass has read the mark (and not ended): rd and st are kept */
bit rd[NP + 1];
bit st[NP + 1];
bit lcur[NL];    /* a patient wait recorded in the current epoch: passes of this epoch skip it */
#ifdef MIDPASS
/*
 * The leases server p's pass has passed over (pv[p]: its passed | passedOld), and those of them
 * since whose refusal a capacity mark came (mk[p]): what a pass compares when it reads the mark
 * again (in-order.ts wantedBy), kept here as the bits it needs.
 */
byte pv[NP + 1];
byte mk[NP + 1];
#endif
byte nextQk = 1;

/* ---- locks held by open transactions ---- */
byte turn;       /* the type's turn: ResourceTypeQueue row, FOR NO KEY UPDATE */
byte lockL[NL];  /* Lease rows, FOR NO KEY UPDATE */
byte wr[NL];     /* the server writing the lease now (the single-writer check) */

bit busy[NP + 1];
bit crash[NP + 1];
byte crashes;
byte stalls;

/*
 * An assertion that says, in a counterexample, which property it is (scripts/model-check.sh names
 * them): 1 state machine, 2 write without the row lock, 3 two writers, 4 greedy policy order,
 * 5 grant onto a closed resource, 6 two holders of a slot, 7 over the limit, 8 over the quota,
 * 9 gang split, 10 a lease left waiting.
 */
#define CHECK(cond, what) if :: !(cond) -> printf("@@ VIOLATED: property %d\n", what); assert(cond) :: else -> skip fi

/* The state machine (state-machines.ts): every status write goes through setStatus. */
#define LEGAL(f, t) (((f) == NONE && (t) == PENDING) || \
  ((f) == PENDING && ((t) == ACQUIRED || (t) == ACTIVE || (t) == RELEASED || (t) == BROKEN)) || \
  ((f) == ACQUIRED && ((t) == ACTIVE || (t) == PENDING || (t) == RELEASED || (t) == BROKEN)) || \
  ((f) == ACTIVE && ((t) == RELEASED || (t) == BROKEN)) || \
  (((f) == RELEASED || (f) == BROKEN) && (t) == DESTROYED))

inline setStatus(sI, sTo) {
  CHECK(LEGAL(ls[sI], sTo), 1);
  CHECK(wr[sI] == me, 2);
  ls[sI] = sTo
}

inline beginWrite(bI) {
  CHECK(wr[bI] == 0 || wr[bI] == me, 3);
  wr[bI] = me
}

/*
 * The job sK asked for by a committing transaction (writeScheduledJobs, upsertJobSql): due now,
 * marked to run again if it is running. Its wake-up goes out after the commit from this server:
 * `wake` keeps it until the job is completed, and a crash before that loses it.
 */
inline schedule(sK) {
  if
  :: jlock[sK] != 0 -> jrerun[sK] = 1
  :: else -> skip
  fi;
  jex[sK] = JDUE;
  jknown[sK] = 1;
  wake = wake | (1 << sK)
}

/*
 * The same at a later time (a lease's until): the first request while the job runs sets its time
 * and marks it to run again; otherwise the earlier time wins.
 */
inline scheduleAtUntil(dK) {
  if
  :: jlock[dK] != 0 && !jrerun[dK] -> jex[dK] = JDELAYED; jrerun[dK] = 1
  :: jex[dK] == JNONE -> jex[dK] = JDELAYED
  :: else -> skip
  fi
}

/* The pass asked for by a change that may free capacity (schedulePass with capacity). */
inline markCapacity() {
#if defined(EPOCH) && !defined(NO_MARK)
  jnew = 1;
  st[1] = st[1] | hasRead[1];
  st[2] = st[2] | hasRead[2];
#if NP > 2
  st[3] = st[3] | hasRead[3];
#endif
#endif
#if defined(MIDPASS) && !defined(NO_MARK)
  mk[1] = mk[1] | pv[1];
  mk[2] = mk[2] | pv[2];
#if NP > 2
  mk[3] = mk[3] | pv[3];
#endif
#endif
  skip
}

/* The same from a client's request (requests.ts): the API's process may die before the wake-up. */
inline request(rK) {
  if
  :: jlock[rK] != 0 -> jrerun[rK] = 1
  :: else -> skip
  fi;
  jex[rK] = JDUE;
  if
  :: jknown[rK] = 1
  :: crashes < MAXCRASH -> crashes++; printf("@@ the API's process dies before its wake-up of job %d goes out\n", rK)
  fi
}

/* RELEASED or BROKEN, then DESTROYED in the same update: slot keys go, the type's pass is asked for. */
inline endLease(eI, eHow) {
  printf("@@ p%d: lease %d -> status %d, then DESTROYED\n", me, eI, eHow);
  setStatus(eI, eHow);
  setStatus(eI, DESTROYED);
  if
  :: key0 == eI + 1 -> key0 = 0
  :: else -> skip
  fi;
  if
  :: lres[eI] != NORES -> schedule(JPASS); markCapacity()
  :: else -> skip
  fi
}

/* releaseOtherParts: the other parts of the gang are told to release. */
inline releaseOtherParts(oI) {
  if
  :: GANG(oI) && LIVE(ls[SIBLING(oI)]) -> lcmd[SIBLING(oI)] = 1; schedule(JLEASE(SIBLING(oI)))
  :: else -> skip
  fi
}

/* ---- the lease update (lease-update.ts updateLease): writer from ACQUIRED on, and of commands ---- */
inline leaseUpdate(uI) {
  /* lockLease: the row lock, FOR NO KEY UPDATE */
#ifndef NO_LEASE_LOCK
  atomic { lockL[uI] == 0 -> lockL[uI] = me; beginWrite(uI); printf("@@ p%d: update of lease %d takes its row lock\n", me, uI) }
#else
  beginWrite(uI);
#endif
  atomic {
    if
    :: LIVE(ls[uI]) && lcmd[uI] -> endLease(uI, RELEASED)
    :: LIVE(ls[uI]) && !lcmd[uI] && lexp[uI] && HAS_UNTIL(uI) -> endLease(uI, RELEASED)
    :: else ->
      if
      :: ls[uI] == PENDING -> /* waitingLease: the pass may have skipped it */
        printf("@@ p%d: lease %d still waits: asks for a pass\n", me, uI);
        schedule(JPASS);
        markCapacity()
      :: ls[uI] == ACQUIRED && rs[lres[uI]] == ACTIVE ->
        printf("@@ p%d: lease %d ACQUIRED -> ACTIVE on R%d\n", me, uI, lres[uI]);
        setStatus(uI, ACTIVE)
#ifndef REACQUIRE_GANG
      :: ls[uI] == ACQUIRED && rs[lres[uI]] != ACTIVE && GANG(uI) ->
        releaseOtherParts(uI); /* releaseGang */
        endLease(uI, RELEASED)
      :: ls[uI] == ACQUIRED && rs[lres[uI]] != ACTIVE && !GANG(uI) ->
#else
      :: ls[uI] == ACQUIRED && rs[lres[uI]] != ACTIVE ->
#endif
        /* reacquire: back to PENDING with its place in the queue, its slot keys go */
        printf("@@ p%d: lease %d reacquires: R%d is gone, back to PENDING\n", me, uI, lres[uI]);
        setStatus(uI, PENDING);
        if
        :: key0 == uI + 1 -> key0 = 0
        :: else -> skip
        fi;
        lres[uI] = NORES;
        lcur[uI] = 0;
        schedule(JPASS);
        markCapacity()
      :: ls[uI] == ACTIVE && rs[lres[uI]] != ACTIVE -> /* checkActive: resource-broken */
        releaseOtherParts(uI);
        endLease(uI, BROKEN)
      :: else -> skip
      fi
    fi;
    lcmd[uI] = 0;
    /* the expiry job: its own update again at until */
    if
    :: HAS_UNTIL(uI) && HELD(ls[uI]) && !lexp[uI] -> resched = JDELAYED
    :: else -> skip
    fi;
    wr[uI] = 0;
    lockL[uI] = 0
  }
}

/* ---- the resource update (resource-update.ts): a failed health check breaks the resource ---- */
inline resourceUpdate(uR) {
  atomic {
    if
    :: rbreak[uR] && rs[uR] == ACTIVE ->
      printf("@@ p%d: resource R%d BROKEN, then DESTROYED (its limit key goes)\n", me, uR);
      rs[uR] = DESTROYED; /* BROKEN, destroyed at once: its slot key goes */
      if
      :: keyLimit == uR -> keyLimit = 0
      :: else -> skip
      fi;
      /* wakeLeasesOn: its leases' updates break or reacquire them; the type's pass looks again */
      for (t : 0 .. NL - 1) {
        if
        :: lres[t] == uR && HELD(ls[t]) -> schedule(JLEASE(t))
        :: else -> skip
        fi
      }
      schedule(JPASS);
      markCapacity()
    :: else -> skip
    fi;
    rbreak[uR] = 0
  }
}

/* ---- the scheduling pass (scheduler/pass.ts runSchedulingPass) ---- */

/* One lease against the pool as read (plan.ts): least-loaded live resource, else allocate, else R0. */
inline planLease(pI, pOk) {
  pOk = 0;
  if
  :: DEMAND(pI) == DEM_A && bsnap != 0 -> pr[pI] = bsnap; pOk = 1
  :: DEMAND(pI) == DEM_A && bsnap == 0 && newRes -> pr[pI] = NEWRES; pOk = 1
  :: DEMAND(pI) == DEM_A && bsnap == 0 && !newRes && limitSnap == 0 && slotSnap ->
    newRes = 1; pr[pI] = NEWRES; pOk = 1
  :: else ->
    if
    :: key0snap == 0 && !r0used -> r0used = 1; pr[pI] = 0; pOk = 1
    :: else -> skip
    fi
  fi
}

/* The pool as a pass reads it (allocation-view.ts): the resources, their slot keys; not the pass's own writes. */
inline readPool() {
  key0snap = key0;
  limitSnap = keyLimit;
  bsnap = 0;
  slotSnap = 0;
  for (t : 1 .. NR - 1) {
    if
    :: rs[t] == ACTIVE -> bsnap = t
    :: rs[t] == NONE -> slotSnap = 1
    :: else -> skip
    fi
  }
  t = 0
}

/*
 * The gang (L1, L2) all or none, with its owner's quota; a part not read (busy with its own
 * update) makes the pass look again soon.
 */
inline planGang() {
  if
  :: !(heads & (1 << G2)) ->
    /* gang-busy: a part is not PENDING or is locked by its own update; look again soon */
    schedule(JPASS)
  :: (heads & (1 << G2)) && q + 2 > QUOTA1 -> blocked = blocked | (1 << G1) | (1 << G2)
  :: (heads & (1 << G2)) && q + 2 <= QUOTA1 ->
    sr0 = r0used; sNew = newRes;
    planLease(G1, ok);
    planLease(G2, ok2);
    if
    :: ok && ok2 -> GANG_TRY
#ifndef PARTIAL_GANG
    :: else -> pr[G1] = NORES; pr[G2] = NORES; r0used = sr0; newRes = sNew /* ROLLBACK TO SAVEPOINT gang */
#else
    :: else -> q = q + ok + ok2
#endif
    fi
  fi
}

/* Greedy in policy order (arrival here) with backfill; a gang all or none; the owner's quota. */
inline plan() {
  for (t : 0 .. NL - 1) { pr[t] = NORES }
  r0used = 0;
  newRes = 0;
  blocked = 0;
  q = q1snap;
  for (k : 1 .. nextQk - 1) {
#ifdef NEWEST_FIRST
    kq = nextQk - k;
#else
    kq = k;
#endif
    for (t : 0 .. NL - 1) {
      if
      :: (heads & (1 << t)) && qk[t] == kq && !GANG(t) && skipOk && !bump && lcur[t] ->
        /* capacity-epoch.ts: refused in this epoch, nothing freed since: refused again, untried */
        printf("@@ p%d: skips lease %d: it waits patiently since this epoch\n", me, t)
      :: (heads & (1 << t)) && qk[t] == kq && !GANG(t) && !(skipOk && !bump && lcur[t]) ->
        if
        :: OWNER(t) != 1 || q + 1 <= QUOTA1 ->
          planLease(t, ok);
          if
          :: ok && OWNER(t) == 1 -> q++
          :: else -> skip
          fi
        :: else -> blocked = blocked | (1 << t) /* blocker: quota */
        fi
      :: (heads & (1 << t)) && qk[t] == kq && t == G1 -> planGang()
      :: else -> skip
      fi
    }
  }
  k = 0; kq = 0; t = 0; ok = 0; ok2 = 0; sr0 = 0; sNew = 0; r0used = 0; q = 0
}

#ifdef MIDPASS
/* A single lease (L0, L3) of sU's shape (attributes) and another demand (owner) in the mask m. */
#define SHAPE_IN(m, sU) ( \
  (((m) & 1) && DEMAND(0) == DEMAND(sU) && OWNER(0) != OWNER(sU)) || \
  (((m) & 8) && 3 < NL && DEMAND(3) == DEMAND(sU) && OWNER(3) != OWNER(sU)))
/* The same of any demand (heldAhead looks at the shape only). */
#define SHAPE_ANY(m, sU) ( \
  (((m) & 1) && 0 != (sU) && DEMAND(0) == DEMAND(sU)) || \
  (((m) & 8) && 3 < NL && 3 != (sU) && DEMAND(3) == DEMAND(sU)))

/* Granted in the pass: what was passed over since the last grant was passed over before it. */
inline grantTry(gU) {
  served++;
  passedOld = passedOld | passed;
  passed = 0;
  if
  :: OWNER(gU) == 1 -> q++
  :: else -> skip
  fi
}

/* Capacity kept for a lease ahead: neither is served now; the next pass, right after, starts with it. */
inline holdTry(hU) {
  held = held | (1 << hU);
  heldShapes = heldShapes | (1 << DEMAND(hU));
  printf("@@ p%d: holds lease %d back: a lease ahead could use what it got\n", me, hU);
  schedule(JPASS)
}

/*
 * serve.ts takeBack (PassedOverLeases.takeBack): what was passed over since the pass's last
 * grant goes back into the order, ahead of rU (put back), to be tried; nothing more is skipped in
 * this pass. If a lease skipped in the epoch was passed over before the last grant, serving it
 * now would put the pass's grants out of order: the pass stops, and the next, asked for at once,
 * starts with it.
 */
inline retryPassedOver(rU) {
  skipping = 0;
  if
  :: (skipped & passedOld) != 0 ->
    printf("@@ p%d: stops the pass: a lease skipped before its last grant may now be served\n", me);
    stopped = 1;
    schedule(JPASS)
  :: else ->
    skipped = 0;
    tried = tried & ~passed;
    mk[me] = mk[me] & ~passed;
    todo = todo | passed | (1 << rU);
    passed = 0
  fi
}

/*
 * The singles passed over (mask m) that could use what lease or gang gU got, as passed-over.ts
 * othersAhead and in-order.ts wantedBy ask it: of another shape than a single gU (those of its shape are
 * SHAPE_IN's and SHAPE_ANY's), any for a gang. Not those skipped in the epoch (the callers leave
 * them out): a newer mark sends them back first (retryPassedOver).
 */
#define WANTS(k, m, gU) (((m) & (1 << (k))) && (GANG(gU) || DEMAND(k) != DEMAND(gU)) && \
  (COULD_USE(k, pr[gU]) || (GANG(gU) && COULD_USE(k, pr[SIBLING(gU)]))))
#define WANT_ANY(m, gU) (WANTS(0, m, gU) || (3 < NL && WANTS(3, m, gU)))
/* What a gang's parts got, as one value (pgot's: 0 is none). */
#define GOT2 (pr[G1] * 8 + pr[G2] + 1)

/*
 * One single lease tried (in-order.ts InOrderTries.serve). With leases of its shape and another demand
 * refused since the pass's last grant (refusedAhead), or of its shape refused before it
 * (heldAhead), or of another shape that could use what it gets (othersAhead), its try is a
 * probe: refused, that stands; served, it is undone if one of those could use what it got, and
 * then either it is held back (heldAhead; or one of another shape refused before the last grant,
 * with a capacity mark since its refusal: wantedBy), or it and every lease passed over since the
 * last grant go back into the order (retryPassedOver), unless it got what its probe before had
 * with no grant between.
 */
inline tryLease(lU) {
  kept = SHAPE_ANY(passedOld, lU);
  ahead = SHAPE_IN(passed, lU);
  if
  :: kept && (heldShapes & (1 << DEMAND(lU))) -> held = held | (1 << lU)
  :: else ->
    sr0 = r0used; sNew = newRes;
    planLease(lU, ok);
    if
    :: ok -> wantOld = WANT_ANY(passedOld & mk[me] & ~skipped, lU); wantNew = WANT_ANY(passed & ~skipped, lU)
    :: else -> skip
    fi;
    if
    :: !ok -> passed = passed | (1 << lU); tried = tried | (1 << lU); mk[me] = mk[me] & ~(1 << lU)
#ifndef NO_REOFFER
    :: ok && !kept && !wantOld && !ahead && !wantNew -> grantTry(lU)
    :: ok && !kept && !wantOld && (ahead || wantNew) && pgot[lU] == pr[lU] + 1 && pserved[lU] == served ->
      grantTry(lU)
    :: ok && (kept || wantOld || ((ahead || wantNew) && !(pgot[lU] == pr[lU] + 1 && pserved[lU] == served))) ->
      printf("@@ p%d: lease %d's probe got L%d->%d, which a lease ahead was refused: undone\n", me, lU, lU, pr[lU]);
      ns = pr[lU] + 1;
      pr[lU] = NORES; r0used = sr0; newRes = sNew; /* ROLLBACK TO SAVEPOINT probe */
      if
      :: kept || wantOld || prounds[lU] >= PROBE_ROUNDS -> holdTry(lU)
      :: !(kept || wantOld || prounds[lU] >= PROBE_ROUNDS) ->
        prounds[lU]++;
        pgot[lU] = ns;
        pserved[lU] = served;
        retryPassedOver(lU)
      fi;
      ns = 0
#else
    :: ok -> grantTry(lU)
#endif
    fi;
    wantOld = 0; wantNew = 0
  fi
}

/*
 * The gang's parts all planned (in-order.ts keepGang): kept, or undone as a single lease's probe
 * is, when a lease passed over could use what a part got.
 */
inline gangTry() {
  wantOld = WANT_ANY(passedOld & mk[me] & ~skipped, G1);
  wantNew = WANT_ANY(passed & ~skipped, G1);
  if
#ifndef NO_GANG_REOFFER
  :: wantOld || (wantNew && !(pgot[G1] == GOT2 && pserved[G1] == served)) ->
    printf("@@ p%d: the gang's parts got L1->%d L2->%d, which a lease ahead was refused: undone\n", me, pr[G1], pr[G2]);
    ns = GOT2;
    pr[G1] = NORES; pr[G2] = NORES; r0used = sr0; newRes = sNew; /* ROLLBACK TO SAVEPOINT gang */
    if
    :: wantOld || prounds[G1] >= PROBE_ROUNDS ->
      held = held | (1 << G1) | (1 << G2);
      printf("@@ p%d: holds the gang back: a lease ahead could use what it got\n", me);
      schedule(JPASS)
    :: !(wantOld || prounds[G1] >= PROBE_ROUNDS) ->
      prounds[G1]++;
      pgot[G1] = ns;
      pserved[G1] = served;
      retryPassedOver(G1)
    fi;
    ns = 0
  :: !(wantOld || (wantNew && !(pgot[G1] == GOT2 && pserved[G1] == served))) ->
#else
  :: true ->
#endif
    q = q + 2; GANG_SERVED
  fi;
  wantOld = 0; wantNew = 0
}

#ifdef EPOCH
/*
 * A try behind leases skipped in the epoch (in-order.ts tryWatchingMark). The mark was compared before
 * it, in the step that chose the lease; its statements (the pool read, the slot lock looked at and
 * taken) come now, each seeing whatever committed before it, so a release may land between that
 * comparison and them. What it got is judged by the mark read after it (watchedCheck).
 */
inline watchedTry() {
  u = wtry - 1;
  wtry = 0;
  readPool();
  wPassed = passed; wPassedOld = passedOld; wr0 = r0used; wNew = newRes;
  tryLease(u);
  if
  :: pr[u] != NORES -> wchk = u + 1
  :: else -> skip
  fi;
  printf("@@ p%d: tries lease %d behind skipped leases (R0 slot key held by lease+1: %d, live shared resource: R%d): got R%d\n",
         me, u, key0snap, bsnap, pr[u]);
  key0snap = 0; limitSnap = 0; slotSnap = 0; bsnap = 0; u = 0; ok = 0; sr0 = 0; sNew = 0; kept = 0; ahead = 0;
  pv[me] = passed | passedOld
}

/*
 * in-order.ts tookFreed: the mark read after the try's statements. A mark since the pass's read means
 * capacity may have freed while the try ran, and what the try took may be what a skipped lease
 * waits for: the try is undone (ROLLBACK TO SAVEPOINT watched) and the skipped leases go back into
 * the order first, or the pass stops (retryPassedOver). -DMARK_BEFORE_TRY keeps the try.
 */
inline watchedCheck() {
  u = wchk - 1;
  wchk = 0;
  if
#ifndef MARK_BEFORE_TRY
  :: st[me] && pr[u] != NORES ->
    printf("@@ p%d: a capacity mark came while lease %d was tried: its try (R%d) is undone\n", me, u, pr[u]);
    pr[u] = NORES; r0used = wr0; newRes = wNew; served--;
    if
    :: OWNER(u) == 1 -> q--
    :: else -> skip
    fi;
    passed = wPassed; passedOld = wPassedOld;
    retryPassedOver(u)
#endif
  :: else -> skip
  fi;
  u = 0; wPassed = 0; wPassedOld = 0; wr0 = 0; wNew = 0;
  pv[me] = passed | passedOld
}
#endif

/*
 * The pass's order taken one unit at a time, each in a step of its own that reads the pool as it
 * is then: a release may commit between two of them. Otherwise plan()'s: greedy in policy order
 * (arrival here), backfill, a gang all or none, the owner's quota.
 */
inline planMid() {
  for (t : 0 .. NL - 1) { pr[t] = NORES; pgot[t] = 0; pserved[t] = 0; prounds[t] = 0 }
  t = 0;
  r0used = 0; newRes = 0; blocked = 0; held = 0; heldShapes = 0; passed = 0; passedOld = 0; served = 0;
  skipped = 0; tried = 0; stopped = 0;
#ifdef EPOCH
  skipping = 1;
#endif
  q = q1snap;
  todo = heads;
  do
  :: atomic {
       todo != 0 && !stopped && wtry == 0 && wchk == 0 ->
       u = NL;
       for (t : 0 .. NL - 1) {
         if
         :: (todo & (1 << t)) && (u == NL || qk[t] < qk[u]) -> u = t
         :: else -> skip
         fi
       }
       t = 0;
       todo = todo & ~(1 << u);
       readPool();
       if
       :: !GANG(u) && OWNER(u) == 1 && q + 1 > QUOTA1 -> blocked = blocked | (1 << u) /* blocker: quota */
#ifdef EPOCH
       :: !GANG(u) && !(OWNER(u) == 1 && q + 1 > QUOTA1) && skipping && !bump && lcur[u] ->
         /* refused in this epoch, nothing freed since as far as the pass has seen: untried */
         printf("@@ p%d: skips lease %d: it waits patiently since this epoch\n", me, u);
         passed = passed | (1 << u);
         skipped = skipped | (1 << u);
         /* its refusal saw the turn's mark */
         if
         :: st[me] -> mk[me] = mk[me] | (1 << u)
         :: else -> mk[me] = mk[me] & ~(1 << u)
         fi
       :: !GANG(u) && !(OWNER(u) == 1 && q + 1 > QUOTA1) && !(skipping && !bump && lcur[u]) &&
          skipped != 0 && STALE_VIEW ->
         /* its view shows a newer mark: the skipped leases go first */
         retryPassedOver(u)
       :: !GANG(u) && !(OWNER(u) == 1 && q + 1 > QUOTA1) && !(skipping && !bump && lcur[u]) &&
          !(skipped != 0 && STALE_VIEW) && skipped == 0 -> tryLease(u)
       :: !GANG(u) && !(OWNER(u) == 1 && q + 1 > QUOTA1) && !(skipping && !bump && lcur[u]) &&
          !(skipped != 0 && STALE_VIEW) && skipped != 0 ->
         /* behind skipped leases: the try's statements come in a step of their own (watchedTry) */
         wtry = u + 1
#else
       :: !GANG(u) && !(OWNER(u) == 1 && q + 1 > QUOTA1) -> tryLease(u)
#endif
       :: u == G2 -> skip /* a gang is taken with its first part (G1) */
       :: u == G1 && skipped != 0 ->
         /* the gang reads the pool from the database: leases skipped ahead of it go first */
         retryPassedOver(u)
       :: u == G1 && skipped == 0 ->
         todo = todo & ~(1 << G2);
         planGang()
       fi;
#ifdef EPOCH
       if
       :: wtry != 0 -> printf("@@ p%d: lease %d is next, behind skipped leases; no mark since the pass's\n", me, u)
       :: wtry == 0 && (skipped & (1 << u)) -> skip /* narrated above */
       :: else ->
#endif
#ifdef BIG
       printf("@@ p%d: tries lease %d against the pool as it is now (R0 slot key held by lease+1: %d, live shared resource: R%d); planned so far: L0->%d L1->%d L2->%d L3->%d\n",
              me, u, key0snap, bsnap, pr[0], pr[1], pr[2], pr[3]);
#else
       printf("@@ p%d: tries lease %d against the pool as it is now (R0 slot key held by lease+1: %d, live shared resource: R%d); planned so far: L0->%d L1->%d L2->%d\n",
              me, u, key0snap, bsnap, pr[0], pr[1], pr[2]);
#endif
#ifdef EPOCH
       fi;
#endif
       key0snap = 0; limitSnap = 0; slotSnap = 0; bsnap = 0; u = 0; ok = 0; ok2 = 0; sr0 = 0; sNew = 0;
       kept = 0; ahead = 0;
       pv[me] = passed | passedOld
     }
#ifdef EPOCH
  :: atomic { wtry != 0 -> watchedTry() }
  :: atomic { wchk != 0 -> watchedCheck() }
#endif
  :: atomic { (todo == 0 || stopped) && wtry == 0 && wchk == 0 -> break }
  od;
  atomic {
    for (t : 0 .. NL - 1) { pgot[t] = 0; pserved[t] = 0; prounds[t] = 0 }
    t = 0; r0used = 0; q = 0; held = 0; heldShapes = 0; passed = 0; passedOld = 0; served = 0;
    todo = 0; skipped = 0; skipping = 0; stopped = 0; pv[me] = 0; mk[me] = 0
  }
}
#endif

inline runPass() {
  /*
   * idle-queues.ts: a pass may first look, in one statement and without the turn, whether any
   * lease waits, and end there if none does (the code looks only when its last pass left the
   * queue idle: either choice may be made here). The code's statement also completes the job
   * (deletes its row unless it was asked for again): the job's completion below, taken at once
   * after the look, which is one of the orders this model already explores.
   */
  if
  :: atomic {
#ifdef EPOCH
       rd[me] = jnew; st[me] = 0; hasRead[me] = 1; /* see the turn below */
#endif
       idle = 1;
       for (t : 0 .. NL - 1) {
         if
         :: ls[t] == PENDING -> idle = 0
         :: else -> skip
         fi
       }
       t = 0;
       if
       :: idle -> printf("@@ p%d: finds no lease waiting, without the turn: the pass ends\n", me)
       :: else -> skip
       fi
     }
#ifdef EPOCH
  :: atomic { rd[me] = jnew; st[me] = 0; hasRead[me] = 1 }
#else
  :: skip
#endif
  fi;
  if
  :: idle -> idle = 0
  :: else ->
  /*
   * takeTurn's statement reads the pass job's capacity mark in its snapshot, taken before it may
   * wait for the turn: read above, in the step before the turn.
   */
#ifndef NO_TURN
  /* takeTurn: the first statement of the transaction */
  atomic { turn == 0 -> turn = me; printf("@@ p%d: takes the turn of type host\n", me) }
#endif
  /* readHeads (+ readGangs): the waiting leases, row-locked, SKIP LOCKED */
  atomic {
    /* the same statement as the turn: the epoch moves on when the mark is not the one it stands for */
#ifdef EPOCH
    bump = rd[me];
#endif
    for (t : 0 .. NL - 1) {
      if
      :: ls[t] == PENDING && lockL[t] == 0 -> lockL[t] = me; beginWrite(t); heads = heads | (1 << t)
#ifndef NO_SKIP_RETRY
      :: ls[t] == PENDING && lockL[t] != 0 && lockL[t] != me ->
        /* skipped, locked by an update that may yet roll back: look again after a backoff */
        schedule(JPASS)
#endif
      :: else -> skip
      fi
    }
    t = 0;
    printf("@@ p%d: reads the queue: heads %d (bit i = lease i), row-locked\n", me, heads);
    /* and, in the same statement, the heads' owners' live leases, for quotas and fair share */
    q1snap = 0;
    for (t : 0 .. NL - 1) {
      if
      :: OWNER(t) == 1 && HELD(ls[t]) -> q1snap++
      :: else -> skip
      fi
    }
    t = 0
  }
replan:
#ifdef MIDPASS
  planMid();
#else
  /* read the pool (resources, their slot keys), and plan in memory */
  atomic {
    /*
     * The views carry the job's mark: one other than the turn's, and the leases the pass skipped
     * are tried first (trySkipped), which against this one read of the pool is not skipping.
     */
#if defined(EPOCH) && !defined(SKIP_STALE)
    skipOk = !st[me];
#elif defined(EPOCH)
    skipOk = 1;
#endif
    readPool();
    plan();
    printf("@@ p%d: plans from the pool as read (R0 slot key held by lease+1: %d, limit key held by R%d, live shared resource: R%d, owner 1 has %d live): L0->%d L1->%d L2->%d\n",
           me, key0snap, limitSnap, bsnap, q1snap, pr[0], pr[1], pr[2]);
    key0snap = 0; limitSnap = 0; slotSnap = 0
  }
#endif
  /* write every grant with its checks, and commit; or StalePlan: plan again */
  atomic {
    stale = 0;
    ns = 0;
    if
    :: newRes ->
      for (t : 1 .. NR - 1) {
        if
        :: rs[t] == NONE && ns == 0 -> ns = t /* the new Resource row */
        :: else -> skip
        fi
      }
      if
      :: ns == 0 -> stale = 1
#ifndef UNCHECKED_SLOTS
      :: ns != 0 && keyLimit != 0 -> stale = 1 /* its limit key is held: nothing was inserted */
#endif
      :: else -> skip
      fi
    :: else -> skip
    fi;
    for (t : 0 .. NL - 1) {
      if
#ifndef NO_RECHECK
      :: pr[t] != NORES && pr[t] != 0 && pr[t] != NEWRES && rs[pr[t]] != ACTIVE -> stale = 1
#endif
#ifndef UNCHECKED_SLOTS
      :: pr[t] == 0 && key0 != 0 -> stale = 1 /* the all-or-none insert's count fell short */
#endif
      :: else -> skip
      fi
    }
    if
    :: stale -> t = 0; printf("@@ p%d: StalePlan: a planned resource or slot key changed; plans again\n", me)
    :: else ->
      if
      :: ns != 0 ->
        printf("@@ p%d: allocates resource R%d (limit key held before: %d)\n", me, ns, keyLimit);
        rs[ns] = ACTIVE;
        if
        :: keyLimit == 0 -> keyLimit = ns
        :: else -> skip /* ON CONFLICT DO NOTHING */
        fi
      :: else -> skip
      fi;
      for (t : 0 .. NL - 1) {
        if
        :: pr[t] != NORES ->
          /*
           * Greedy order: no lease ahead that this pass read is left waiting while what it could
           * have used (the resource, or its owner's quota) goes to this one.
           */
          for (k : 0 .. NL - 1) {
            CHECK(!((heads & (1 << k)) && !GANG(k) && pr[k] == NORES && qk[k] < qk[t] &&
                    ((!(blocked & (1 << k)) && COULD_USE(k, pr[t])) ||
                     ((blocked & (1 << k)) && OWNER(k) == OWNER(t)))),
                  4)
          }
          k = 0;
          /* a grant is written only onto a resource that is open when it commits */
          CHECK(pr[t] == 0 || pr[t] == NEWRES || rs[pr[t]] == ACTIVE, 5)
          if
          :: pr[t] == 0 ->
            lres[t] = 0;
            if
            :: key0 == 0 -> key0 = t + 1
            :: else -> skip /* ON CONFLICT DO NOTHING */
            fi;
            printf("@@ p%d: grants lease %d on R0: ACTIVE (lease-acquired, lease-activated)\n", me, t);
            setStatus(t, ACTIVE) /* lease-acquired, then lease-activated */
          :: else ->
            lres[t] = (pr[t] == NEWRES -> ns : pr[t]);
            printf("@@ p%d: grants lease %d on R%d: ACQUIRED\n", me, t, lres[t]);
            setStatus(t, ACQUIRED);
            schedule(JLEASE(t))
          fi;
          if
          :: HAS_UNTIL(t) -> scheduleAtUntil(JLEASE(t))
          :: else -> skip
          fi
        :: else -> skip
        fi
      }
      /*
       * The queue row moves to the turn's epoch and mark; a single lease read and still waiting,
       * not for its quota, records the epoch (a patient wait); one granted forgets it.
       */
#ifdef EPOCH
      if
      :: bump -> for (t : 0 .. NL - 1) { lcur[t] = 0 }
      :: else -> skip
      fi;
      for (t : 0 .. NL - 1) {
        if
#ifdef MIDPASS
        /* only a try records the epoch: not a lease skipped, held back, or left by a stopped pass */
        :: (tried & (1 << t)) && pr[t] == NORES -> lcur[t] = 1
#else
        :: (heads & (1 << t)) && !GANG(t) && pr[t] == NORES && !(blocked & (1 << t)) -> lcur[t] = 1
#endif
        :: (heads & (1 << t)) && pr[t] != NORES -> lcur[t] = 0
        :: else -> skip
        fi
      }
      /*
       * The queue's mark becomes the one this pass read. Another pass's read mark is the same
       * one only if no mark came between the two reads: sure when no mark came after either;
       * when marks came after both, they are taken as different (that pass moves the epoch on).
       */
      jnew = st[me];
      for (t : 1 .. NP) {
        if
        :: t != me && hasRead[t] -> rd[t] = st[t] | st[me]
        :: else -> skip
        fi
      }
      rd[me] = 0; st[me] = 0; hasRead[me] = 0;
#endif
      /* commit: every row lock and the turn go */
      for (t : 0 .. NL - 1) {
        if
        :: lockL[t] == me -> lockL[t] = 0; wr[t] = 0
        :: else -> skip
        fi
      }
      t = 0;
      if
      :: turn == me -> turn = 0
      :: else -> skip
      fi;
      printf("@@ p%d: commits the pass\n", me)
#ifdef ALWAYS_AGAIN
      ;
      schedule(JPASS)
#endif
    fi
  }
  if
  :: stale -> stale = 0; goto replan
  :: else -> skip
  fi
  fi
}

/* ---- a server: claims jobs and runs them (queue/worker.ts); may crash at any step ---- */
#define CLAIMABLE(x) ((x) < NJ && jex[x] == JDUE && jknown[x] && (jlock[x] == 0 || jlock[x] == DEAD))
#define CLAIMABLE_ANY (CLAIMABLE(0) || CLAIMABLE(1) || CLAIMABLE(2) || CLAIMABLE(3) || CLAIMABLE(4) || \
                       CLAIMABLE(5) || CLAIMABLE(6) || CLAIMABLE(7))
#define LOST(x) ((x) < NJ && jex[x] == JDUE && !jknown[x] && (jlock[x] == 0 || jlock[x] == DEAD))

proctype Server(byte me) {
  byte j, t, k, kq, wake, resched, heads, blocked, q1snap, q, bsnap, key0snap, limitSnap, ns;
  bit slotSnap, newRes, r0used, sr0, sNew, ok, ok2, stale, idle, again, skipOk, bump;
  byte pr[NL];
#ifdef MIDPASS
  byte u, todo, passed, passedOld, held, heldShapes, served, skipped, tried;
  bit kept, ahead, skipping, stopped, wantOld, wantNew;
  byte pgot[NL], pserved[NL], prounds[NL];
  byte wtry, wchk; /* watchedTry's lease (+1) and its check's (-DEPOCH; otherwise they stay 0) */
#ifdef EPOCH
  byte wPassed, wPassedOld; /* what watchedCheck undoes */
  bit wr0, wNew;
#endif
#endif

end_idle:
  do
  :: {
end_claim:
       do
       :: atomic {
            /*
             * claimJobs: a due job, unclaimed or with an expired claim. Servers are alike, so only
             * the lowest-numbered idle one claims (symmetry reduction); jobs go lowest key first
             * (claimJobs orders by runAt, id) unless ANY_ORDER.
             */
            again || ((me == 1 || busy[me - 1]) && CLAIMABLE_ANY) ->
            if
            :: again ->
              /* the job this server kept claimed when it completed (below): it runs again */
              again = 0; printf("@@ p%d: runs job %d again, still claimed\n", me, j)
            :: else ->
#ifdef ANY_ORDER
            if
            :: CLAIMABLE(0) -> j = 0
            :: CLAIMABLE(1) -> j = 1
            :: CLAIMABLE(2) -> j = 2
            :: CLAIMABLE(3) -> j = 3
            :: CLAIMABLE(4) -> j = 4
            :: CLAIMABLE(5) -> j = 5
            :: CLAIMABLE(6) -> j = 6
            :: CLAIMABLE(7) -> j = 7
            fi;
#else
            j = 0;
            do
            :: CLAIMABLE(j) -> break
            :: else -> j++
            od;
#endif
            printf("@@ p%d: claims job %d (claim before: %d)\n", me, j, jlock[j]);
            jlock[j] = me; jrerun[j] = 0; jknown[j] = 0; busy[me] = 1
            fi
          }
          if
          :: j == JPASS -> runPass()
          :: j >= JLEASE(0) && j < JLEASE(NL) -> leaseUpdate(j - JLEASE(0))
          :: else -> resourceUpdate(j - JRES(0))
          fi;
          /*
           * completeJob: deleted, or kept when asked for again while it ran; then notify. A pass
           * or a lease update with nothing left to run completes its job in its own transaction's
           * last statement instead (allocator/jobs.ts): this step taken at once after the commit,
           * with nothing in between, which is one of the orders explored here. Its row is deleted,
           * released for the later time asked for (releaseJobSql), or, asked for again now (by
           * another transaction while it ran, or by its own: a pass asking for itself is modelled
           * as schedule(JPASS), which marks the running job), kept claimed (continueRerunJobSql):
           * this server runs it again at once, no other server can claim it in between (the claim
           * step above).
           */
          atomic {
            if
            :: jlock[j] == me ->
              jlock[j] = 0;
              if
#ifndef NO_RERUN
              :: jrerun[j] && (jex[j] == JDUE || resched == JDUE) ->
                jex[j] = JDUE;
                if
                :: jknown[j] = 1; printf("@@ p%d: job %d was asked for while it ran: due again\n", me, j)
                :: jlock[j] = me; again = 1;
                   printf("@@ p%d: job %d was asked for while it ran: kept claimed to run again\n", me, j)
                fi
              :: jrerun[j] && jex[j] == JDELAYED && resched != JDUE -> skip /* kept for its time */
#endif
              :: else ->
                if
                :: resched == JDELAYED && lexp[j - JLEASE(0)] -> jex[j] = JDUE; jknown[j] = 1
                :: resched == JDELAYED && !lexp[j - JLEASE(0)] -> jex[j] = JDELAYED
                :: else -> jex[j] = JNONE
                fi
              fi;
              jrerun[j] = 0
            :: else -> printf("@@ p%d: job %d done, but its claim was lost meanwhile\n", me, j)
            fi;
            printf("@@ p%d: completes job %d\n", me, j);
            if
            :: again -> skip
            :: else -> j = 0; busy[me] = 0
            fi;
            resched = 0; wake = 0; heads = 0; blocked = 0; q1snap = 0; bsnap = 0; ns = 0;
            newRes = 0; skipOk = 0; bump = 0; rd[me] = 0; st[me] = 0; hasRead[me] = 0;
            for (t : 0 .. NL - 1) { pr[t] = 0 }
#ifdef MIDPASS
            tried = 0;
#endif
            t = 0
          }
       od
     } unless { crash[me] };
     /* crashed (kill -9): the transaction rolls back, the claims expire, wake-ups not sent are lost */
     d_step {
       printf("@@ p%d: crashes (kill -9): its transaction rolls back, its claims expire\n", me);
       if
       :: turn == me -> turn = 0
       :: else -> skip
       fi;
       for (t : 0 .. NL - 1) {
         if
         :: lockL[t] == me -> lockL[t] = 0
         :: else -> skip
         fi;
         if
         :: wr[t] == me -> wr[t] = 0
         :: else -> skip
         fi
       }
       for (t : 0 .. NJ - 1) {
         if
         :: jlock[t] == me -> jlock[t] = DEAD
         :: else -> skip
         fi;
         if
         :: (wake & (1 << t)) && jlock[t] == 0 -> jknown[t] = 0
         :: else -> skip
         fi
       }
       j = 0; t = 0; k = 0; kq = 0; wake = 0; resched = 0; heads = 0; blocked = 0; q1snap = 0;
       q = 0; bsnap = 0; key0snap = 0; limitSnap = 0; ns = 0; slotSnap = 0; newRes = 0;
       r0used = 0; sr0 = 0; sNew = 0; ok = 0; ok2 = 0; stale = 0; idle = 0; again = 0;
       skipOk = 0; bump = 0; rd[me] = 0; st[me] = 0; hasRead[me] = 0;
       for (t : 0 .. NL - 1) { pr[t] = 0 }
#ifdef MIDPASS
       u = 0; todo = 0; passed = 0; passedOld = 0; held = 0; heldShapes = 0; served = 0; kept = 0; ahead = 0;
       skipped = 0; tried = 0; skipping = 0; stopped = 0; pv[me] = 0; mk[me] = 0;
       for (t : 0 .. NL - 1) { pgot[t] = 0; pserved[t] = 0; prounds[t] = 0 }
#endif
       t = 0;
       busy[me] = 0;
       crash[me] = 0
     }
  od
}

/*
 * kill -9 of a server at any step of a job; or a pause so long (GC, a lost heartbeat) that its
 * claim expires and another server takes the job over while it still runs.
 */
#define STALL(p) atomic { \
    stalls < MAXSTALL && busy[p] && !crash[p] -> \
    for (t : 0 .. NJ - 1) { if :: jlock[t] == p -> jlock[t] = DEAD; stalls++; \
      printf("@@ p%d pauses: its claim on job %d expires while it runs\n", p, t) :: else -> skip fi }; \
    t = 0 }

active proctype Crasher() {
  byte t;
end_crasher:
  do
  :: STALL(1)
  :: STALL(2)
#if NP > 2
  :: STALL(3)
#endif
  :: atomic { crashes < MAXCRASH && busy[1] && !crash[1] -> crash[1] = 1; crashes++ }
  :: atomic { crashes < MAXCRASH && busy[2] && !crash[2] -> crash[2] = 1; crashes++ }
#if NP > 2
  :: atomic { crashes < MAXCRASH && busy[3] && !crash[3] -> crash[3] = 1; crashes++ }
#endif
  od
}

#ifndef NO_SWEEP
/* the worker's slow sweep: due jobs whose wake-up was lost, and claims that expired */
active proctype Sweeper() {
  byte t;
end_sweeper:
  do
  :: atomic {
       LOST(0) || LOST(1) || LOST(2) || LOST(3) || LOST(4) || LOST(5) || LOST(6) || LOST(7) ->
       for (t : 0 .. NJ - 1) {
         if
         :: LOST(t) -> jknown[t] = 1; printf("@@ the sweep finds job %d\n", t)
         :: else -> skip
         fi
       }
       t = 0
     }
  od
}
#endif

/* A client of one lease: requests it, and once it is ACTIVE releases it or lets it expire. */
proctype Single(byte i) {
  atomic {
    printf("@@ client: requests lease %d\n", i);
    ls[i] = PENDING; lres[i] = NORES; qk[i] = nextQk; nextQk++;
    request(JPASS)
  }
  (ls[i] == ACTIVE || ls[i] == DESTROYED);
  if
  :: ls[i] == ACTIVE && HAS_UNTIL(i) ->
    /* time passes its until: the delayed update falls due (every worker's timer) */
    atomic {
      printf("@@ lease %d's until passes\n", i);
      lexp[i] = 1;
      if
      :: jex[JLEASE(i)] == JDELAYED -> jex[JLEASE(i)] = JDUE; jknown[JLEASE(i)] = (jlock[JLEASE(i)] == 0)
      :: else -> skip
      fi
    }
  :: ls[i] == ACTIVE && !HAS_UNTIL(i) ->
    atomic { printf("@@ client: releases lease %d\n", i); lcmd[i] = 1; request(JLEASE(i)) }
  :: ls[i] == DESTROYED -> skip
  fi
}

/* A client of a gang (requestGang): both parts in one request; released together (requestRelease). */
proctype Gang() {
  atomic {
    printf("@@ client: requests the gang of leases %d and %d\n", G1, G2);
    ls[G1] = PENDING; ls[G2] = PENDING; lres[G1] = NORES; lres[G2] = NORES;
    qk[G1] = nextQk; qk[G2] = nextQk; nextQk++;
    request(JPASS)
  }
  ((ls[G1] == ACTIVE && ls[G2] == ACTIVE) || ls[G1] == DESTROYED || ls[G2] == DESTROYED);
  atomic {
    printf("@@ client: releases the gang\n");
    if
    :: LIVE(ls[G1]) -> lcmd[G1] = 1; request(JLEASE(G1))
    :: else -> skip
    fi;
    if
    :: LIVE(ls[G2]) -> lcmd[G2] = 1; request(JLEASE(G2))
    :: else -> skip
    fi
  }
}

/* An operator's update-lease on a waiting lease, once. */
proctype Poke() {
end_poke:
  if
  :: atomic { ls[0] == PENDING -> printf("@@ operator: update-lease 0\n"); request(JLEASE(0)) }
  :: atomic { ls[G1] == PENDING -> printf("@@ operator: update-lease %d\n", G1); request(JLEASE(G1)) }
  fi
}

/* The blueprint's live resource fails its health check, once. */
proctype HealthCheck() {
end_healthcheck:
  if
  :: atomic { rs[1] == ACTIVE -> printf("@@ health check: R1 fails\n"); rbreak[1] = 1; request(JRES(1)) }
  :: atomic { rs[2] == ACTIVE -> printf("@@ health check: R2 fails\n"); rbreak[2] = 1; request(JRES(2)) }
  fi
}

/* ---- what must hold ---- */
#define ON_R0(i) ((i) < NL && HELD(ls[i]) && lres[i] == 0)
#define TWO_ON_R0 ((ON_R0(0) + ON_R0(1) + ON_R0(2) + ON_R0(3)) > 1)
#define OVER_LIMIT (rs[1] == ACTIVE && rs[2] == ACTIVE)
#define OWNED1(i) ((i) < NL && OWNER(i) == 1 && HELD(ls[i]))
#define OVER_QUOTA ((OWNED1(0) + OWNED1(1) + OWNED1(2) + OWNED1(3)) > QUOTA1)
#define GANG_SPLIT ((ls[G1] == PENDING && HELD(ls[G2])) || (ls[G2] == PENDING && HELD(ls[G1])))

/* In every state. */
active proctype Invariants() {
end_invariants:
  atomic {
    (TWO_ON_R0 || OVER_LIMIT || OVER_QUOTA || GANG_SPLIT) ->
    CHECK(!TWO_ON_R0, 6);
    CHECK(!OVER_LIMIT, 7);
    CHECK(!OVER_QUOTA, 8);
    CHECK(!GANG_SPLIT, 9)
  }
}

/*
 * Liveness: once nothing can move, every lease asked for was served and ended (clients release
 * what they get and untils pass, so capacity keeps freeing): none was left waiting forever.
 */
active proctype Quiescence() {
  byte t;
  timeout ->
  for (t : 0 .. NL - 1) {
    CHECK(ls[t] == DESTROYED, 10)
  }
}

init {
  atomic {
    byte t;
    rs[0] = ACTIVE;
    for (t : 0 .. NL - 1) { lres[t] = NORES }
    for (t : 1 .. NP) { run Server(t) }
    run Single(0);
    run Gang();
#ifdef BIG
    run Single(3);
#endif
    run Poke();
#ifndef NO_HEALTH
    run HealthCheck();
#endif
    t = 0
  }
}
