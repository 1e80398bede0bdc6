namespace Attention.Reference.Tensors;

/// <summary>
/// How many threads the library's parallel loops may use. Parallel loops split only over independent outputs, so
/// every result is bitwise identical for any value of <see cref="MaxThreads"/>.
/// </summary>
public static class Compute
{
    private static int _maxThreads = Environment.ProcessorCount;

    /// <summary>The most threads a parallel loop uses (default: the processor count). Must be at least 1.</summary>
    public static int MaxThreads
    {
        get => _maxThreads;
        set => _maxThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "MaxThreads must be at least 1.");
    }

    /// <summary>Options for <see cref="Parallel"/> loops that honour <see cref="MaxThreads"/>.</summary>
    public static ParallelOptions Options => new() { MaxDegreeOfParallelism = _maxThreads };

    /// <summary>
    /// Runs <paramref name="body"/> for each i in [0, count), in parallel when <see cref="MaxThreads"/> &gt; 1.
    /// Each index must write outputs no other index writes.
    /// </summary>
    public static void For(int count, Action<int> body)
    {
        if (_maxThreads == 1 || count <= 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, Options, body);
    }

    /// <summary>Runs <paramref name="action"/> with <see cref="MaxThreads"/> set to <paramref name="threads"/>, then restores it.</summary>
    public static TResult WithThreads<TResult>(int threads, Func<TResult> action)
    {
        int saved = _maxThreads;
        MaxThreads = threads;
        try { return action(); }
        finally { _maxThreads = saved; }
    }
}
