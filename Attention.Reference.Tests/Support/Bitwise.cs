
namespace Attention.Reference.Tests.Support;

/// <summary>Bitwise comparisons and the thread-count determinism check.</summary>
public static class Bitwise
{
    /// <summary>Asserts two tensors are bitwise identical (NaN payloads and signed zeros included).</summary>
    public static void AssertIdentical<T>(DenseTensor<T> expected, DenseTensor<T> actual, string what)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        Assert.True(expected.HasShape(actual.Shape), $"{what}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        for (int i = 0; i < expected.Length; i++)
        {
            bool same = typeof(T) == typeof(double)
                ? BitConverter.DoubleToInt64Bits(double.CreateTruncating(expected.Data[i])) == BitConverter.DoubleToInt64Bits(double.CreateTruncating(actual.Data[i]))
                : BitConverter.SingleToInt32Bits(float.CreateTruncating(expected.Data[i])) == BitConverter.SingleToInt32Bits(float.CreateTruncating(actual.Data[i]));
            Assert.True(same, $"{what}: element {i} differs: {expected.Data[i]} vs {actual.Data[i]}");
        }
    }

    /// <summary>Runs <paramref name="compute"/> with 1 thread and with each of <paramref name="threadCounts"/>; asserts bitwise equal sets.</summary>
    public static void AssertSameForThreadCounts<T>(Func<TensorSet<T>> compute, params int[] threadCounts)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        var reference = Compute.WithThreads(1, compute);
        foreach (int threads in threadCounts.DefaultIfEmpty(Math.Max(2, Environment.ProcessorCount)))
        {
            var other = Compute.WithThreads(threads, compute);
            Assert.Equal(reference.Names, other.Names);
            foreach (var (name, t) in reference) AssertIdentical(t, other.Get(name), $"{name} with {threads} threads vs 1");
        }
    }
}
