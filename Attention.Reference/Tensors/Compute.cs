namespace Attention.Reference.Tensors;

/// <summary>
/// How many threads the library's parallel loops may use. Parallel loops split only over independent outputs, so
/// every result is bitwise identical for any value of <see cref="MaxThreads"/>.
/// </summary>
public static class Compute
{
    private static int _maxThreads = Environment.ProcessorCount;
    private static readonly AsyncLocal<int?> ScopedThreads = new();

    /// <summary>
    /// The most threads a parallel loop uses (default: the processor count). Must be at least 1. Inside
    /// <see cref="WithThreads{TResult}"/> the scoped value applies to the calling flow only.
    /// </summary>
    public static int MaxThreads
    {
        get => ScopedThreads.Value ?? _maxThreads;
        set => _maxThreads = Check(value);
    }

    /// <summary>Options for <see cref="Parallel"/> loops that honour <see cref="MaxThreads"/>.</summary>
    public static ParallelOptions Options => new() { MaxDegreeOfParallelism = MaxThreads };

    /// <summary>
    /// Runs <paramref name="body"/> for each i in [0, count), in parallel when <see cref="MaxThreads"/> &gt; 1, on a
    /// persistent team of threads (no allocation per loop; an exception is rethrown as itself). Each index must
    /// write outputs no other index writes.
    /// </summary>
    public static void For(int count, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        int threads = MaxThreads;
        if (threads == 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        WorkerTeam.For(count, threads, body);
    }

    /// <summary>
    /// <see cref="For(int, Action{int})"/> with the body as a struct (its fields are what a lambda would capture): no
    /// closure and no delegate are allocated per call, so a warm kernel built on it allocates nothing.
    /// </summary>
    public static void For<TBody>(int count, in TBody body) where TBody : struct, IForBody
    {
        int threads = MaxThreads;
        if (threads == 1 || count <= 1)
        {
            var b = body;
            for (int i = 0; i < count; i++) b.Invoke(i);
            return;
        }
        WorkerTeam.For(count, threads, in body);
    }

    /// <summary>
    /// The work (multiply-adds, or elements touched) below which <see cref="ForWork(int, Action{int}, long)"/> runs on the
    /// caller alone: waking the team costs more than such a loop (SE's tiny FC layers on [8, 256] took 0.1 ms a call).
    /// </summary>
    public const long SerialWork = 1 << 16;

    /// <summary>
    /// <see cref="For(int, Action{int})"/> for a loop of about <paramref name="work"/> operations in all: in parallel
    /// only from <see cref="SerialWork"/> on. The same outputs either way.
    /// </summary>
    public static void ForWork(int count, Action<int> body, long work)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (work >= SerialWork) { For(count, body); return; }
        for (int i = 0; i < count; i++) body(i);
    }

    /// <summary><see cref="For{TBody}(int, in TBody)"/> for a loop of about <paramref name="work"/> operations in all.</summary>
    public static void ForWork<TBody>(int count, in TBody body, long work) where TBody : struct, IForBody
    {
        if (work >= SerialWork) { For(count, in body); return; }
        var b = body;
        for (int i = 0; i < count; i++) b.Invoke(i);
    }

    /// <summary>
    /// Runs <paramref name="body"/> for every sample of a batch of <paramref name="n"/>: in parallel over samples when
    /// there are at least as many as threads (each sample's passes then run on one thread, so a second pass over its
    /// planes finds them in that core's cache; loops inside the body run on that thread), else one sample after
    /// another, each body's own loops split over the threads. Bodies must write disjoint outputs.
    /// </summary>
    public static void PerSample(int n, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (MaxThreads > 1 && n >= MaxThreads) For(n, body);
        else for (int i = 0; i < n; i++) body(i);
    }

    /// <summary><see cref="PerSample(int, Action{int})"/> with the body as a struct (nothing allocated per call).</summary>
    public static void PerSample<TBody>(int n, in TBody body) where TBody : struct, IForBody
    {
        if (MaxThreads > 1 && n >= MaxThreads) { For(n, in body); return; }
        var b = body;
        for (int i = 0; i < n; i++) b.Invoke(i);
    }

    /// <summary>
    /// Runs <paramref name="action"/> with <see cref="MaxThreads"/> = <paramref name="threads"/> for the calling flow
    /// only (other threads are unaffected), then restores it.
    /// </summary>
    public static TResult WithThreads<TResult>(int threads, Func<TResult> action)
    {
        int? saved = ScopedThreads.Value;
        ScopedThreads.Value = Check(threads);
        try { return action(); }
        finally { ScopedThreads.Value = saved; }
    }

    private static int Check(int threads) =>
        threads >= 1 ? threads : throw new ArgumentOutOfRangeException(nameof(threads), threads, "MaxThreads must be at least 1.");
}

/// <summary>A parallel loop body as a struct (see <see cref="Compute.For{TBody}(int, in TBody)"/>).</summary>
public interface IForBody
{
    /// <summary>Iteration <paramref name="i"/>; it must write outputs no other iteration writes.</summary>
    void Invoke(int i);
}

/// <summary>
/// Elementwise loops over fixed chunks of 32768 elements, in parallel (<see cref="Compute.For"/>): every element is
/// computed alone, so the chunking changes nothing but the speed.
/// </summary>
internal static class Chunks
{
    /// <summary>A chunk body as a struct (no closure per call).</summary>
    public interface IBody
    {
        /// <summary>Elements [lo, hi).</summary>
        void Invoke(int lo, int hi);
    }

    private struct Loop<TBody> : IForBody where TBody : struct, IBody
    {
        public TBody Body;
        public int Length;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int k)
        {
            var b = Body;
            b.Invoke(k * Size, Math.Min(Length, (k + 1) * Size));
        }
    }

    /// <summary><see cref="For(int, Action{int, int})"/> with a struct body: allocates nothing.</summary>
    public static void For<TBody>(int length, in TBody body) where TBody : struct, IBody
    {
        int chunks = (length + Size - 1) / Size;
        if (chunks <= 1) { var b = body; b.Invoke(0, length); return; }
        Compute.For(chunks, new Loop<TBody> { Body = body, Length = length });
    }

    private const int Size = 1 << 15;

    /// <summary>Runs <paramref name="body"/>(lo, hi) over [0, length) in chunks.</summary>
    public static void For(int length, Action<int, int> body)
    {
        int chunks = (length + Size - 1) / Size;
        if (chunks <= 1) { body(0, length); return; }
        Compute.For(chunks, k => body(k * Size, Math.Min(length, (k + 1) * Size)));
    }
}
