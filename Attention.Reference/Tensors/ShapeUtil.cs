namespace Attention.Reference.Tensors;

/// <summary>Shape arithmetic and the shape checks whose messages name the tensor, the expected and the actual shape.</summary>
public static class ShapeUtil
{
    /// <summary>The number of elements of <paramref name="shape"/>; rejects negative sizes and overflow.</summary>
    public static int Volume(ReadOnlySpan<int> shape, string what = "shape")
    {
        long volume = 1;
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"{what} {Format(shape)} has a negative dimension.");
        // A zero dimension makes the tensor empty whatever the order of the others.
        if (shape.Contains(0)) return 0;
        foreach (int d in shape)
        {
            volume *= d;
            if (volume > Array.MaxLength)
                throw new ArgumentException($"{what} {Format(shape)} has more than {Array.MaxLength} elements.");
        }
        return (int)volume;
    }

    /// <summary>Formats a shape as [a, b, c].</summary>
    public static string Format(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";

    /// <summary>Throws a <see cref="ShapeMismatchException"/> unless <paramref name="tensor"/> has shape <paramref name="expected"/>.</summary>
    public static void Require<T>(DenseTensor<T> tensor, string name, params ReadOnlySpan<int> expected)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        if (!tensor.HasShape(expected)) throw new ShapeMismatchException(name, expected.ToArray(), tensor.ShapeArray());
    }

    /// <summary>Throws unless <paramref name="tensor"/> has rank <paramref name="rank"/>.</summary>
    public static void RequireRank<T>(DenseTensor<T> tensor, string name, int rank, string layout)
        where T : System.Numerics.IFloatingPointIeee754<T>
    {
        if (tensor.Rank != rank)
            throw new ShapeMismatchException(name, $"rank {rank} ({layout})", tensor.ShapeArray());
    }
}

/// <summary>A tensor does not have the shape an operation requires. The message names the tensor and both shapes.</summary>
public sealed class ShapeMismatchException : ArgumentException
{
    /// <summary>The tensor's name (a state_dict key, or an input such as "x").</summary>
    public string TensorName { get; }

    /// <summary>The actual shape.</summary>
    public int[] Actual { get; }

    /// <summary>Creates the exception for an expected shape.</summary>
    public ShapeMismatchException(string tensorName, int[] expected, int[] actual)
        : this(tensorName, ShapeUtil.Format(expected), actual) { }

    /// <summary>Creates the exception for an expectation described in words.</summary>
    public ShapeMismatchException(string tensorName, string expected, int[] actual)
        : base($"Tensor '{tensorName}' has shape {ShapeUtil.Format(actual)}, expected {expected}.")
    {
        TensorName = tensorName;
        Actual = actual;
        Expected = expected;
    }

    /// <summary>The expected shape, in words.</summary>
    public string Expected { get; } = "";
}
