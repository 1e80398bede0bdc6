using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>
/// The fast float32 twin of <see cref="SqueezeExcitation"/>: the same equations (docs/derivations/se.md), fused.
/// Forward: one pass over x for the squeeze (Eq. (se.1)/(se.2)), the two tiny FC layers, one pass writing y (Eq. (se.7)).
/// Backward: one pass over (dy, x) for ds (Eq. (se.8)), the FC backward, one pass writing dx (Eqs. (se.17)/(se.18)).
/// <see cref="ForwardBackward"/> fuses further: one pass over (x, dy) computes the squeeze and ds together and one
/// pass writes y and dx together, so x and dy are each read twice and y, dx written once.
/// Plane passes are vectorised (Vector512 where accelerated, else the portable Vector&lt;float&gt;) and split over
/// (n, c) planes only; every plane's reduction has a fixed order (lane-wise accumulators, then a fixed horizontal
/// sum, then the scalar tail), so results are bitwise identical for any thread count (not to the float64 oracle's order).
/// </summary>
public static class SqueezeExcitationFast
{
    /// <summary>The forward pass. <paramref name="y"/>, when given, receives the output (x's shape) instead of a new tensor.</summary>
    public static SeForwardState<float> Forward(SeOptions options, DenseTensor<float> x, SeParameters<float> p, DenseTensor<float>? y = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        SqueezeExcitation.CheckInput(options, x);
        int n = x.Dim(0), c = options.Channels, plane = x.Dim(2) * x.Dim(3);
        y = Output(y, x, "y");

        var z = new DenseTensor<float>(n, c);
        int[]? argMax = options.Pool == SePool.Max ? new int[n * c] : null;
        var xd = x.Data;
        var zd = z.Data;
        float inv = plane; // divide (not multiply by the reciprocal), as the oracle
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
            {
                var xs = new ReadOnlySpan<float>(xd, q * plane, plane);
                if (argMax is null) zd[q] = SeKernels.Sum(xs) / inv;
                else (zd[q], argMax[q]) = SeKernels.MaxArg(xs);
            }
        });

        var (h, r, e, s) = Excite(options, p, z);

        var yd = y.Data;
        var sd = s.Data;
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
                SeKernels.Scale(new ReadOnlySpan<float>(xd, q * plane, plane), sd[q], new Span<float>(yd, q * plane, plane));
        });
        return new SeForwardState<float> { X = x, Z = z, ArgMax = argMax, H = h, R = r, E = e, S = s, Y = y };
    }

    /// <summary>The backward pass from a forward state. <paramref name="dx"/>, when given, receives x.grad.</summary>
    public static SeGradients<float> Backward(SeOptions options, SeParameters<float> p, SeForwardState<float> st, DenseTensor<float> dy,
        DenseTensor<float>? dx = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(st);
        ArgumentNullException.ThrowIfNull(dy);
        var x = st.X;
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = options.Channels, plane = x.Dim(2) * x.Dim(3);
        dx = Output(dx, x, "dx");

        var ds = new float[n * c];
        var xd = x.Data;
        var gd = dy.Data;
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
                ds[q] = SeKernels.Dot(new ReadOnlySpan<float>(gd, q * plane, plane), new ReadOnlySpan<float>(xd, q * plane, plane));
        });

        var (grads, dz) = ExciteBackward(options, p, st.Z, st.H, st.R, st.E, st.S, ds, dx);

        var dxd = dx.Data;
        var sd = st.S.Data;
        var dzd = dz.Data;
        var arg = st.ArgMax;
        float count = plane;
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
            {
                var dst = new Span<float>(dxd, q * plane, plane);
                if (arg is null) SeKernels.ScaleAdd(new ReadOnlySpan<float>(gd, q * plane, plane), sd[q], dzd[q] / count, dst);
                else
                {
                    SeKernels.Scale(new ReadOnlySpan<float>(gd, q * plane, plane), sd[q], dst);
                    dst[arg[q]] += dzd[q];
                }
            }
        });
        return grads;
    }

    /// <summary>
    /// Forward and backward fused: one pass over (x, dy) for the squeeze and ds, the FCs forward and backward, one
    /// pass writing y and dx. <paramref name="y"/> and <paramref name="dx"/>, when given, receive the outputs.
    /// </summary>
    public static (DenseTensor<float> Y, SeGradients<float> Grads) ForwardBackward(SeOptions options, DenseTensor<float> x,
        SeParameters<float> p, DenseTensor<float> dy, DenseTensor<float>? y = null, DenseTensor<float>? dx = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(dy);
        SqueezeExcitation.CheckInput(options, x);
        ShapeUtil.Require(dy, "y.grad", x.ShapeArray());
        int n = x.Dim(0), c = options.Channels, plane = x.Dim(2) * x.Dim(3);
        y = Output(y, x, "y");
        dx = Output(dx, x, "dx");

        var z = new DenseTensor<float>(n, c);
        var ds = new float[n * c];
        int[]? argMax = options.Pool == SePool.Max ? new int[n * c] : null;
        var xd = x.Data;
        var gd = dy.Data;
        var zd = z.Data;
        float count = plane;
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
            {
                var xs = new ReadOnlySpan<float>(xd, q * plane, plane);
                var gs = new ReadOnlySpan<float>(gd, q * plane, plane);
                if (argMax is null)
                {
                    (float sum, ds[q]) = SeKernels.SumAndDot(xs, gs);
                    zd[q] = sum / count;
                }
                else
                {
                    (zd[q], argMax[q]) = SeKernels.MaxArg(xs);
                    ds[q] = SeKernels.Dot(gs, xs);
                }
            }
        });

        var (h, r, e, s) = Excite(options, p, z);
        var (grads, dz) = ExciteBackward(options, p, z, h, r, e, s, ds, dx);

        var yd = y.Data;
        var dxd = dx.Data;
        var sd = s.Data;
        var dzd = dz.Data;
        ForPlanes(n * c, (q0, q1) =>
        {
            for (int q = q0; q < q1; q++)
            {
                var xs = new ReadOnlySpan<float>(xd, q * plane, plane);
                var gs = new ReadOnlySpan<float>(gd, q * plane, plane);
                var ys = new Span<float>(yd, q * plane, plane);
                var dst = new Span<float>(dxd, q * plane, plane);
                if (argMax is null) SeKernels.ScaleBoth(xs, gs, sd[q], dzd[q] / count, ys, dst);
                else
                {
                    SeKernels.ScaleBoth(xs, gs, sd[q], 0f, ys, dst);
                    dst[argMax[q]] += dzd[q];
                }
            }
        });
        return (y, grads);
    }

    /// <summary>Eqs. (se.3)–(se.6) on [N, C]: h, r, e, s (FC dot products vectorised over the input feature).</summary>
    private static (DenseTensor<float> H, DenseTensor<float> R, DenseTensor<float> E, DenseTensor<float> S) Excite(
        SeOptions options, SeParameters<float> p, DenseTensor<float> z)
    {
        int n = z.Dim(0), c = options.Channels, hid = options.Hidden;
        var h = new DenseTensor<float>(n, hid);
        var r = new DenseTensor<float>(n, hid);
        var e = new DenseTensor<float>(n, c);
        var s = new DenseTensor<float>(n, c);
        var w1 = p.W1.Data;
        var w2 = p.W2.Data;
        for (int b = 0; b < n; b++)
        {
            var zb = new ReadOnlySpan<float>(z.Data, b * c, c);
            for (int j = 0; j < hid; j++)
            {
                float v = TensorPrimitives.Dot(new ReadOnlySpan<float>(w1, j * c, c), zb);
                if (p.B1 is not null) v += p.B1.Data[j];
                h.Data[b * hid + j] = v;
                r.Data[b * hid + j] = Activations.Relu(v);
            }
            var rb = new ReadOnlySpan<float>(r.Data, b * hid, hid);
            for (int k = 0; k < c; k++)
            {
                float v = TensorPrimitives.Dot(new ReadOnlySpan<float>(w2, k * hid, hid), rb);
                if (p.B2 is not null) v += p.B2.Data[k];
                e.Data[b * c + k] = v;
                s.Data[b * c + k] = options.Gate == SeGate.Sigmoid ? Activations.Sigmoid(v) : Activations.HardSigmoid(v);
            }
        }
        return (h, r, e, s);
    }

    /// <summary>Eqs. (se.9)–(se.16) from ds: the parameter gradients and dz (batch sums sequential in n).</summary>
    private static (SeGradients<float> Grads, DenseTensor<float> Dz) ExciteBackward(SeOptions options, SeParameters<float> p,
        DenseTensor<float> z, DenseTensor<float> h, DenseTensor<float> r, DenseTensor<float> e, DenseTensor<float> s,
        float[] ds, DenseTensor<float> dx)
    {
        int n = z.Dim(0), c = options.Channels, hid = options.Hidden;
        var de = new float[n * c];
        for (int i = 0; i < de.Length; i++)
            de[i] = options.Gate == SeGate.Sigmoid
                ? ds[i] * Activations.SigmoidGradFromOutput(s.Data[i])
                : ds[i] * Activations.HardSigmoidGrad(e.Data[i]);

        var dW2 = new DenseTensor<float>(c, hid);
        var dW1 = new DenseTensor<float>(hid, c);
        var db2 = options.Bias ? new DenseTensor<float>(c) : null;
        var db1 = options.Bias ? new DenseTensor<float>(hid) : null;
        var dz = new DenseTensor<float>(n, c);
        var dr = new float[hid];
        var dh = new float[hid];
        var w1 = p.W1.Data;
        var w2 = p.W2.Data;
        for (int b = 0; b < n; b++)
        {
            var rb = new ReadOnlySpan<float>(r.Data, b * hid, hid);
            Array.Clear(dr);
            for (int k = 0; k < c; k++)
            {
                float g = de[b * c + k];
                var dw2Row = new Span<float>(dW2.Data, k * hid, hid);
                TensorPrimitives.MultiplyAdd(rb, g, dw2Row, dw2Row);                                  // Eq. (se.10)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w2, k * hid, hid), g, dr, dr);   // Eq. (se.12)
                if (db2 is not null) db2.Data[k] += g;                                                // Eq. (se.11)
            }
            for (int j = 0; j < hid; j++) dh[j] = dr[j] * Activations.ReluGrad(h.Data[b * hid + j]); // Eq. (se.13)
            var zb = new ReadOnlySpan<float>(z.Data, b * c, c);
            var dzb = new Span<float>(dz.Data, b * c, c);
            for (int j = 0; j < hid; j++)
            {
                var dw1Row = new Span<float>(dW1.Data, j * c, c);
                TensorPrimitives.MultiplyAdd(zb, dh[j], dw1Row, dw1Row);                              // Eq. (se.14)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w1, j * c, c), dh[j], dzb, dzb); // Eq. (se.16)
                if (db1 is not null) db1.Data[j] += dh[j];                                            // Eq. (se.15)
            }
        }
        return (new SeGradients<float> { Dx = dx, DW1 = dW1, DB1 = db1, DW2 = dW2, DB2 = db2 }, dz);
    }

    private static DenseTensor<float> Output(DenseTensor<float>? given, DenseTensor<float> x, string name)
    {
        if (given is null) return new DenseTensor<float>(GC.AllocateUninitializedArray<float>(x.Length), x.ShapeArray());
        ShapeUtil.Require(given, name, x.ShapeArray());
        if (ReferenceEquals(given.Data, x.Data)) throw new ArgumentException($"{name} must not share x's storage.", name);
        return given;
    }

    /// <summary>Splits [0, planes) into contiguous ranges run by <see cref="Compute.For"/>; each plane is written by one range only.</summary>
    private static void ForPlanes(int planes, Action<int, int> range)
    {
        int chunks = Math.Min(planes, Compute.MaxThreads == 1 ? 1 : Compute.MaxThreads * 4);
        if (chunks <= 1)
        {
            range(0, planes);
            return;
        }
        Compute.For(chunks, k => range((int)((long)planes * k / chunks), (int)((long)planes * (k + 1) / chunks)));
    }
}

/// <summary>
/// Vectorised float32 plane kernels for the SE fast path. Each reduction keeps four vector accumulators over the
/// vector-aligned body (element i goes to accumulator (i / W) mod 4), adds them as ((a0 + a1) + (a2 + a3)), sums the
/// lanes with Vector.Sum, then adds the scalar tail in increasing index order: a fixed order for a given path.
/// </summary>
internal static class SeKernels
{
    /// <summary>Whether to use the Vector512 path (tests switch it off to exercise the portable Vector&lt;float&gt; path).</summary>
    internal static bool UseVector512 { get; set; } = Vector512.IsHardwareAccelerated;

    internal static float Sum(ReadOnlySpan<float> x)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        int len = x.Length, i = 0;
        float total;
        if (UseVector512 && len >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= len - 64; i += 64)
            {
                a0 += Vector512.LoadUnsafe(ref px, (nuint)i);
                a1 += Vector512.LoadUnsafe(ref px, (nuint)(i + 16));
                a2 += Vector512.LoadUnsafe(ref px, (nuint)(i + 32));
                a3 += Vector512.LoadUnsafe(ref px, (nuint)(i + 48));
            }
            for (; i <= len - 16; i += 16) a0 += Vector512.LoadUnsafe(ref px, (nuint)i);
            total = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector.IsHardwareAccelerated && len >= Vector<float>.Count)
        {
            int w = Vector<float>.Count;
            Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 += Vector.LoadUnsafe(ref px, (nuint)i);
                a1 += Vector.LoadUnsafe(ref px, (nuint)(i + w));
                a2 += Vector.LoadUnsafe(ref px, (nuint)(i + 2 * w));
                a3 += Vector.LoadUnsafe(ref px, (nuint)(i + 3 * w));
            }
            for (; i <= len - w; i += w) a0 += Vector.LoadUnsafe(ref px, (nuint)i);
            total = Vector.Sum((a0 + a1) + (a2 + a3));
        }
        else total = 0f;
        for (; i < len; i++) total += Unsafe.Add(ref px, i);
        return total;
    }

    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        int len = a.Length, i = 0;
        float total;
        if (UseVector512 && len >= 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= len - 64; i += 64)
            {
                a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)(i + 16)), Vector512.LoadUnsafe(ref pb, (nuint)(i + 16)), a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)(i + 32)), Vector512.LoadUnsafe(ref pb, (nuint)(i + 32)), a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)(i + 48)), Vector512.LoadUnsafe(ref pb, (nuint)(i + 48)), a3);
            }
            for (; i <= len - 16; i += 16)
                a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pa, (nuint)i), Vector512.LoadUnsafe(ref pb, (nuint)i), a0);
            total = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector.IsHardwareAccelerated && len >= Vector<float>.Count)
        {
            int w = Vector<float>.Count;
            Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (; i <= len - 4 * w; i += 4 * w)
            {
                a0 += Vector.LoadUnsafe(ref pa, (nuint)i) * Vector.LoadUnsafe(ref pb, (nuint)i);
                a1 += Vector.LoadUnsafe(ref pa, (nuint)(i + w)) * Vector.LoadUnsafe(ref pb, (nuint)(i + w));
                a2 += Vector.LoadUnsafe(ref pa, (nuint)(i + 2 * w)) * Vector.LoadUnsafe(ref pb, (nuint)(i + 2 * w));
                a3 += Vector.LoadUnsafe(ref pa, (nuint)(i + 3 * w)) * Vector.LoadUnsafe(ref pb, (nuint)(i + 3 * w));
            }
            for (; i <= len - w; i += w) a0 += Vector.LoadUnsafe(ref pa, (nuint)i) * Vector.LoadUnsafe(ref pb, (nuint)i);
            total = Vector.Sum((a0 + a1) + (a2 + a3));
        }
        else total = 0f;
        for (; i < len; i++) total += Unsafe.Add(ref pa, i) * Unsafe.Add(ref pb, i);
        return total;
    }

    /// <summary>(Σ x, Σ g·x) in one pass over both planes.</summary>
    internal static (float Sum, float Dot) SumAndDot(ReadOnlySpan<float> x, ReadOnlySpan<float> g)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(g);
        int len = x.Length, i = 0;
        float sum, dot;
        if (UseVector512 && len >= 16)
        {
            Vector512<float> s0 = default, s1 = default, d0 = default, d1 = default;
            for (; i <= len - 32; i += 32)
            {
                var x0 = Vector512.LoadUnsafe(ref px, (nuint)i);
                var x1 = Vector512.LoadUnsafe(ref px, (nuint)(i + 16));
                s0 += x0;
                s1 += x1;
                d0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pg, (nuint)i), x0, d0);
                d1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pg, (nuint)(i + 16)), x1, d1);
            }
            for (; i <= len - 16; i += 16)
            {
                var x0 = Vector512.LoadUnsafe(ref px, (nuint)i);
                s0 += x0;
                d0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref pg, (nuint)i), x0, d0);
            }
            sum = Vector512.Sum(s0 + s1);
            dot = Vector512.Sum(d0 + d1);
        }
        else if (Vector.IsHardwareAccelerated && len >= Vector<float>.Count)
        {
            int w = Vector<float>.Count;
            Vector<float> s0 = default, s1 = default, d0 = default, d1 = default;
            for (; i <= len - 2 * w; i += 2 * w)
            {
                var x0 = Vector.LoadUnsafe(ref px, (nuint)i);
                var x1 = Vector.LoadUnsafe(ref px, (nuint)(i + w));
                s0 += x0;
                s1 += x1;
                d0 += Vector.LoadUnsafe(ref pg, (nuint)i) * x0;
                d1 += Vector.LoadUnsafe(ref pg, (nuint)(i + w)) * x1;
            }
            for (; i <= len - w; i += w)
            {
                var x0 = Vector.LoadUnsafe(ref px, (nuint)i);
                s0 += x0;
                d0 += Vector.LoadUnsafe(ref pg, (nuint)i) * x0;
            }
            sum = Vector.Sum(s0 + s1);
            dot = Vector.Sum(d0 + d1);
        }
        else
        {
            sum = 0f;
            dot = 0f;
        }
        for (; i < len; i++)
        {
            float xv = Unsafe.Add(ref px, i);
            sum += xv;
            dot += Unsafe.Add(ref pg, i) * xv;
        }
        return (sum, dot);
    }

    /// <summary>y = x · s.</summary>
    internal static void Scale(ReadOnlySpan<float> x, float s, Span<float> y)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int len = x.Length, i = 0;
        if (UseVector512)
        {
            var vs = Vector512.Create(s);
            for (; i <= len - 16; i += 16) (Vector512.LoadUnsafe(ref px, (nuint)i) * vs).StoreUnsafe(ref py, (nuint)i);
        }
        else if (Vector.IsHardwareAccelerated)
        {
            var vs = new Vector<float>(s);
            for (; i <= len - Vector<float>.Count; i += Vector<float>.Count) (Vector.LoadUnsafe(ref px, (nuint)i) * vs).StoreUnsafe(ref py, (nuint)i);
        }
        for (; i < len; i++) Unsafe.Add(ref py, i) = Unsafe.Add(ref px, i) * s;
    }

    /// <summary>dx = g · s + add (the product rounded first, as the oracle).</summary>
    internal static void ScaleAdd(ReadOnlySpan<float> g, float s, float add, Span<float> dx)
    {
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float pd = ref MemoryMarshal.GetReference(dx);
        int len = g.Length, i = 0;
        if (UseVector512)
        {
            var vs = Vector512.Create(s);
            var va = Vector512.Create(add);
            for (; i <= len - 16; i += 16) (Vector512.LoadUnsafe(ref pg, (nuint)i) * vs + va).StoreUnsafe(ref pd, (nuint)i);
        }
        else if (Vector.IsHardwareAccelerated)
        {
            var vs = new Vector<float>(s);
            var va = new Vector<float>(add);
            for (; i <= len - Vector<float>.Count; i += Vector<float>.Count) (Vector.LoadUnsafe(ref pg, (nuint)i) * vs + va).StoreUnsafe(ref pd, (nuint)i);
        }
        for (; i < len; i++) Unsafe.Add(ref pd, i) = Unsafe.Add(ref pg, i) * s + add;
    }

    /// <summary>y = x · s and dx = g · s + add in one pass.</summary>
    internal static void ScaleBoth(ReadOnlySpan<float> x, ReadOnlySpan<float> g, float s, float add, Span<float> y, Span<float> dx)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pd = ref MemoryMarshal.GetReference(dx);
        int len = x.Length, i = 0;
        if (UseVector512)
        {
            var vs = Vector512.Create(s);
            var va = Vector512.Create(add);
            for (; i <= len - 16; i += 16)
            {
                (Vector512.LoadUnsafe(ref px, (nuint)i) * vs).StoreUnsafe(ref py, (nuint)i);
                (Vector512.LoadUnsafe(ref pg, (nuint)i) * vs + va).StoreUnsafe(ref pd, (nuint)i);
            }
        }
        else if (Vector.IsHardwareAccelerated)
        {
            var vs = new Vector<float>(s);
            var va = new Vector<float>(add);
            for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
            {
                (Vector.LoadUnsafe(ref px, (nuint)i) * vs).StoreUnsafe(ref py, (nuint)i);
                (Vector.LoadUnsafe(ref pg, (nuint)i) * vs + va).StoreUnsafe(ref pd, (nuint)i);
            }
        }
        for (; i < len; i++)
        {
            Unsafe.Add(ref py, i) = Unsafe.Add(ref px, i) * s;
            Unsafe.Add(ref pd, i) = Unsafe.Add(ref pg, i) * s + add;
        }
    }

    /// <summary>
    /// The plane's max and its flat index with PyTorch's rule (Eq. (se.2)), the same scalar scan as the oracle:
    /// start from −∞ at index 0, take a value when it is strictly greater or NaN. Ties keep the first maximal
    /// index, a NaN wins (the last NaN), and −0 before +0 keeps −0, exactly as PyTorch.
    /// </summary>
    internal static (float Max, int Index) MaxArg(ReadOnlySpan<float> x)
    {
        float best = float.NegativeInfinity;
        int index = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            if (v > best || float.IsNaN(v))
            {
                best = v;
                index = i;
            }
        }
        return (best, index);
    }
}
