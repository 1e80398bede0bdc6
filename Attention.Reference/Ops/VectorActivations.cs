using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;

namespace Attention.Reference.Ops;

/// <summary>
/// In-place activations over spans with <see cref="Vector{T}"/>, for inference epilogues. ReLU, ReLU6, Hardswish and
/// Hardsigmoid evaluate exactly the scalar formulas of <see cref="Activations"/> lane by lane (NaN kept), so they give
/// the same bits; Sigmoid and SiLU use <see cref="TensorPrimitives"/>' vectorised exp (within float rounding of the
/// scalar formulas, not bitwise).
/// </summary>
public static class VectorActivations
{
    /// <summary>Applies the activation named as <c>IElementwiseOp.Kind</c> in place; false if it has no vector form.</summary>
    public static bool TryApply<T>(string kind, Span<T> values) where T : IFloatingPointIeee754<T>
    {
        switch (kind)
        {
            case "ReLU": Clamp(values, T.Zero, T.PositiveInfinity); return true;
            case "ReLU6": Clamp(values, T.Zero, T.CreateTruncating(6)); return true;
            case "Hardswish": HardFamily(values, swish: true); return true;
            case "Hardsigmoid": HardFamily(values, swish: false); return true;
            case "Sigmoid" when typeof(T) == typeof(float):
                TensorPrimitives.Sigmoid(Cast<T, float>(values), Cast<T, float>(values));
                return true;
            case "SiLU" when typeof(T) == typeof(float):
                Silu(Cast<T, float>(values));
                return true;
            default: return false;
        }
    }

    private static Span<TTo> Cast<TFrom, TTo>(Span<TFrom> s) =>
        MemoryMarshal.CreateSpan(ref System.Runtime.CompilerServices.Unsafe.As<TFrom, TTo>(ref MemoryMarshal.GetReference(s)), s.Length);

    /// <summary>v ≤ lo → lo (NaN kept), v ≥ hi → hi, else v: Activations.Relu / Relu6 lane by lane.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Clamp<T>(Span<T> values, T lo, T hi) where T : IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var vlo = new Vector<T>(lo);
            var vhi = new Vector<T>(hi);
            for (; i + Vector<T>.Count <= values.Length; i += Vector<T>.Count)
            {
                var v = new Vector<T>(values[i..]);
                var r = Vector.ConditionalSelect(Vector.LessThanOrEqual(v, vlo), vlo, Vector.ConditionalSelect(Vector.GreaterThanOrEqual(v, vhi), vhi, v));
                Vector.ConditionalSelect(Vector.Equals(v, v), r, v).CopyTo(values[i..]);
            }
        }
        for (; i < values.Length; i++)
        {
            T v = values[i];
            values[i] = T.IsNaN(v) ? v : v <= lo ? lo : v >= hi ? hi : v;
        }
    }

    /// <summary>Hardsigmoid relu6(v + 3)/6, Hardswish v·relu6(v + 3)/6, in the scalar formulas' order.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void HardFamily<T>(Span<T> values, bool swish) where T : IFloatingPointIeee754<T>
    {
        T three = T.CreateTruncating(3), six = T.CreateTruncating(6);
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var v3 = new Vector<T>(three);
            var v6 = new Vector<T>(six);
            for (; i + Vector<T>.Count <= values.Length; i += Vector<T>.Count)
            {
                var v = new Vector<T>(values[i..]);
                var t = v + v3;
                var r = Vector.ConditionalSelect(Vector.LessThanOrEqual(t, Vector<T>.Zero), Vector<T>.Zero,
                    Vector.ConditionalSelect(Vector.GreaterThanOrEqual(t, v6), v6, t));
                r = Vector.ConditionalSelect(Vector.Equals(t, t), r, t);
                (swish ? v * r / v6 : r / v6).CopyTo(values[i..]);
            }
        }
        for (; i < values.Length; i++)
            values[i] = swish ? Activations.Hardswish(values[i]) : Activations.HardSigmoid(values[i]);
    }

    /// <summary>SiLU v·σ(v) with the vectorised sigmoid, in chunks that stay in L1.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void Silu(Span<float> values)
    {
        Span<float> s = stackalloc float[256];
        for (int i = 0; i < values.Length; i += s.Length)
        {
            var chunk = values.Slice(i, Math.Min(s.Length, values.Length - i));
            var sig = s[..chunk.Length];
            TensorPrimitives.Sigmoid(chunk, sig);
            TensorPrimitives.Multiply(chunk, sig, chunk);
        }
    }
}
