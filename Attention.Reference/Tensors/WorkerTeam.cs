using System.Runtime.ExceptionServices;

namespace Attention.Reference.Tensors;

/// <summary>
/// The persistent threads behind <see cref="Compute.For"/>: created once (grown on demand up to the thread count
/// asked for), woken per loop; the caller works too. Each thread of a loop owns one contiguous share of the indices
/// (thread t of T: [t·count/T, (t+1)·count/T)), takes it in chunks from its own counter, then helps the others with
/// theirs. So a loop repeated with the same shapes gives each thread the same outputs and inputs as the time before,
/// still in its cache (the 3×3 convolutions ran 4–13 % faster than with one shared counter, which moved output lines
/// between the cores on every call), and a slow thread is still helped. The caller always takes share 0; a helper
/// takes the share of its number, so with 2 threads (one helper) the assignment repeats exactly, while with more
/// threads than a loop's shares any woken helper may take a share. A loop allocates nothing here (Parallel.For
/// allocated 0.5–7 KB per call). One loop uses the team at a time: a loop started while another runs, or from inside
/// a loop body, runs on its caller's thread alone — results are the same, since a loop's iterations write disjoint
/// outputs in a fixed per-output order. An exception from the body is rethrown on the caller as itself (the first
/// one; the loop stops handing out indices).
/// </summary>
internal static class WorkerTeam
{
    private const int MaxWorkers = 63;
    private const int ChunksPerThread = 16;

    private static readonly object Gate = new();
    private static readonly SemaphoreSlim Wake = new(0);
    private static readonly ManualResetEventSlim Done = new(false);
    private static readonly List<Thread> Workers = new();

    [ThreadStatic] private static bool t_inLoop;

    // The current loop (guarded by Gate on the caller's side; workers read it after being woken).
    private static Action<int>? s_body;
    private static int s_chunk;
    private static int s_parts;
    // Thread t's share: next index at s_share[t·Pad], end at s_share[t·Pad + 1] (one 128-byte block per thread, so the
    // counters the threads bump do not share a cache line). 64-bit: a counter may run past its end by a chunk per thread.
    private const int Pad = 16;
    private static readonly long[] s_share = new long[(MaxWorkers + 1) * Pad];
    [ThreadStatic] private static int t_self; // 0 for a caller, i for helper i
    private static int s_active;
    private static ExceptionDispatchInfo? s_error;
    private static ExecutionContext? s_context; // the caller's: AsyncLocal settings flow into the body, as with Parallel.For

    /// <summary>The struct body of the loop running on the team, and the one delegate (per body type) that calls it.</summary>
    private static class Slot<TBody> where TBody : struct, IForBody
    {
        public static TBody Body;
        public static readonly Action<int> Run = i => Body.Invoke(i);
    }

    /// <summary>Runs body.Invoke(i) for i in [0, count) on up to <paramref name="threads"/> threads, allocating nothing.</summary>
    public static void For<TBody>(int count, int threads, in TBody body) where TBody : struct, IForBody
    {
        // The body type's delegate is created (once, by its static initializer) even when this loop runs inline, so a
        // later loop of the same type that does get the team allocates nothing (a warm-up that found the team busy
        // used to leave it for the measured call: a flaky 0-byte test).
        if (Slot<TBody>.Run is null) throw new InvalidOperationException("worker team: no loop delegate");
        if (t_inLoop || !Monitor.TryEnter(Gate))
        {
            var b = body;
            for (int i = 0; i < count; i++) b.Invoke(i);
            return;
        }
        try
        {
            Slot<TBody>.Body = body;
            Run(count, threads, Slot<TBody>.Run);
        }
        finally
        {
            Slot<TBody>.Body = default;
            Monitor.Exit(Gate);
        }
    }

    /// <summary>Runs body(i) for i in [0, count) on up to <paramref name="threads"/> threads.</summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (t_inLoop || !Monitor.TryEnter(Gate))
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            Run(count, threads, body);
        }
        finally
        {
            Monitor.Exit(Gate);
        }
    }

    /// <summary>The team runs the loop (the caller holds Gate).</summary>
    private static void Run(int count, int threads, Action<int> body)
    {
        {
            int helpers = Math.Min(Math.Min(threads, MaxWorkers + 1), count) - 1;
            while (Workers.Count < helpers) Spawn();
            s_body = body;
            s_context = ExecutionContext.Capture();
            // Each share is taken in chunks (about 16 per thread): a loop of many tiny iterations (SE's scale over
            // 2048 planes of 7×7) spent more time on one shared per-index counter than in its body.
            int parts = helpers + 1;
            s_chunk = Math.Max(1, count / (parts * ChunksPerThread));
            s_parts = parts;
            for (int t = 0; t < parts; t++)
            {
                s_share[t * Pad] = (long)count * t / parts;
                s_share[t * Pad + 1] = (long)count * (t + 1) / parts;
            }
            s_error = null;
            s_active = helpers + 1;
            Done.Reset();
            Wake.Release(helpers);
            t_self = 0;
            Work();
            // The helpers usually finish within microseconds of the caller: wait for them spinning first, so a
            // finished helper does not have to wake a blocked caller.
            long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref s_active) != 0 && System.Diagnostics.Stopwatch.GetTimestamp() < deadline) Thread.SpinWait(8);
            Done.Wait();
            s_body = null;
            s_context = null;
            s_error?.Throw();
        }
    }

    private static void Spawn()
    {
        int self = Workers.Count + 1;
        var t = new Thread(() => { t_self = self; Loop(); }) { IsBackground = true, Name = $"attention-ref worker {self}" };
        Workers.Add(t);
        t.Start();
    }

    private static void Loop()
    {
        t_inLoop = true;
        var own = ExecutionContext.Capture();
        while (true)
        {
            if (!SpinForWake()) Wake.Wait();
            if (s_context is { } context) ExecutionContext.Restore(context);
            Work();
            if (own is not null) ExecutionContext.Restore(own);
        }
    }

    /// <summary>
    /// How long an idle helper keeps polling for the next loop before it blocks, and a caller for its helpers. Waking a
    /// blocked thread took 8–40 µs on the 2-core VM this was measured on (median 19 µs after a 0.5 ms gap); polling
    /// 0.1 ms brings a loop after a gap of up to that long to ~2 µs. Whole networks gained 0–3 % (within that machine's
    /// noise) with 0.1 or 0.5 ms; 0.5 ms made the test suite, whose threads share two cores, 25 % slower, so 0.1 ms.
    /// (OpenMP runtimes poll 200 ms by default.) Settable for measurements.
    /// </summary>
    internal static long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 10000;

    /// <summary>Polls for a wake-up for <see cref="SpinTicks"/>; true if one was taken.</summary>
    private static bool SpinForWake()
    {
        long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
        while (true)
        {
            if (Wake.CurrentCount > 0 && Wake.Wait(0)) return true;
            Thread.SpinWait(20);
            if (System.Diagnostics.Stopwatch.GetTimestamp() > deadline) return false;
        }
    }

    private static void Work()
    {
        bool wasIn = t_inLoop;
        t_inLoop = true;
        var body = s_body!;
        int chunk = s_chunk, parts = s_parts, self = t_self;
        try
        {
            // Its own share first, then the others' in turn (a helper beyond the loop's parts only helps).
            for (int i = 0; i < parts; i++)
            {
                int t = (self + i) % parts;
                ref long next = ref s_share[t * Pad];
                long end = Volatile.Read(ref s_share[t * Pad + 1]);
                long start;
                while ((start = Interlocked.Add(ref next, chunk) - chunk) < end)
                {
                    try
                    {
                        int stop = (int)Math.Min(end, start + chunk);
                        for (int j = (int)start; j < stop; j++) body(j);
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref s_error, ExceptionDispatchInfo.Capture(e), null);
                        for (int u = 0; u < parts; u++) Interlocked.Exchange(ref s_share[u * Pad], long.MaxValue / 2); // stop
                    }
                }
            }
        }
        finally
        {
            t_inLoop = wasIn;
            if (Interlocked.Decrement(ref s_active) == 0) Done.Set();
        }
    }
}
