using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Attention.Reference.Kernels;
using Attention.Reference.Ops;
using Attention.Reference.Tensors;

namespace Attention.Reference.Modules;

/// <summary>
/// The fast float32 twin of <see cref="SqueezeExcitation"/>: the same equations (docs/derivations/se.md), fused.
/// <para>
/// Work is organised per sample: for sample n, one pass over its C planes computes the squeeze (Eq. (se.1)/(se.2)),
/// the two tiny FC layers run on that sample's [C] vector (Eqs. (se.3)–(se.6)), and a second pass over the same
/// planes, in reverse channel order, writes y (Eq. (se.7)) while they are still in the core's L2 cache (a [256, 28, 28] float32 sample is
/// 800 KB), so x is read from memory about once. The backward mirrors it: one pass for ds (Eq. (se.8)), the FC
/// backward for that sample (Eqs. (se.9), (se.12), (se.13), (se.16)), one pass writing dx (Eqs. (se.17)/(se.18)); the
/// parameter gradients (batch sums, Eqs. (se.10), (se.11), (se.14), (se.15)) are summed afterwards, sequentially in n.
/// <see cref="ForwardBackward"/> fuses both: the first pass computes the squeeze and ds together, the second writes
/// y and dx together.
/// </para>
/// <para>
/// Samples run in parallel when there are at least as many as threads; otherwise samples run in turn and each pass
/// splits its planes over the threads. Either way every plane's reduction has one fixed order (lane-wise vector
/// accumulators, a fixed combination, then the scalar tail; see <see cref="SeKernels"/>) and every FC sum runs in
/// one fixed order, so results are bitwise identical for any thread count (not equal to the float64 oracle's order).
/// </para>
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
        int n = x.Dim(0), c = options.Channels, hid = options.Hidden, plane = x.Dim(2) * x.Dim(3);
        y = Output(y, x, "y");
        var ws = new Work(options, n, plane, options.Pool == SePool.Max, backward: false);
        var xd = x.Data;
        var yd = y.Data;
        PerSample(n, c, (b, forPlanes) =>
        {
            forPlanes((q0, q1) => ws.Squeeze(xd, null, q0, q1));
            ws.Excite(p, b);
            forPlanes((q0, q1) =>
            {
                for (int q = q1 - 1; q >= q0; q--) // reverse: the planes the squeeze touched last are still in L2
                    SeKernels.Scale(ws.Wide, new ReadOnlySpan<float>(xd, q * plane, plane), ws.S[q], new Span<float>(yd, q * plane, plane));
            });
        });
        return ws.State(x, y, hid);
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
        var ws = new Work(options, n, plane, st.ArgMax is not null, backward: true, st);
        var xd = x.Data;
        var gd = dy.Data;
        var dxd = dx.Data;
        PerSample(n, c, (b, forPlanes) =>
        {
            forPlanes((q0, q1) =>
            {
                for (int q = q0; q < q1; q++)
                    ws.Ds[q] = SeKernels.Dot(ws.Wide, new ReadOnlySpan<float>(gd, q * plane, plane), new ReadOnlySpan<float>(xd, q * plane, plane));
            });
            ws.ExciteBackward(p, b);
            forPlanes((q0, q1) => ws.WriteDx(gd, dxd, q0, q1));
        });
        return ws.ParameterGradients(dx);
    }

    /// <summary>
    /// Forward and backward fused: per sample, one pass over (x, dy) for the squeeze and ds, the FCs forward and
    /// backward, one pass writing y and dx. <paramref name="y"/> and <paramref name="dx"/>, when given, receive the outputs.
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
        if (ReferenceEquals(y.Data, dx.Data)) throw new ArgumentException("y and dx must not share storage.", nameof(dx));
        var ws = new Work(options, n, plane, options.Pool == SePool.Max, backward: true);
        var xd = x.Data;
        var gd = dy.Data;
        var yd = y.Data;
        var dxd = dx.Data;
        PerSample(n, c, (b, forPlanes) =>
        {
            forPlanes((q0, q1) => ws.Squeeze(xd, gd, q0, q1));
            ws.Excite(p, b);
            ws.ExciteBackward(p, b);
            forPlanes((q0, q1) =>
            {
                if (ws.ArgMax is null)
                {
                    for (int q = q1 - 1; q >= q0; q--) // reverse: the planes pass 1 touched last are still in L2
                        SeKernels.ScaleBoth(ws.Wide, new ReadOnlySpan<float>(xd, q * plane, plane), new ReadOnlySpan<float>(gd, q * plane, plane),
                            ws.S[q], ws.Dz[q] / ws.Count, new Span<float>(yd, q * plane, plane), new Span<float>(dxd, q * plane, plane));
                }
                else
                {
                    for (int q = q1 - 1; q >= q0; q--)
                    {
                        SeKernels.ScaleBoth(ws.Wide, new ReadOnlySpan<float>(xd, q * plane, plane), new ReadOnlySpan<float>(gd, q * plane, plane),
                            ws.S[q], 0f, new Span<float>(yd, q * plane, plane), new Span<float>(dxd, q * plane, plane));
                        dxd[q * plane + ws.ArgMax[q]] += ws.Dz[q];
                    }
                }
            });
        });
        return (y, ws.ParameterGradients(dx));
    }

    /// <summary>
    /// Runs <paramref name="body"/> for every sample. With at least as many samples as threads, samples run in parallel
    /// and each body runs its plane passes sequentially; otherwise samples run in turn and each plane pass is split
    /// over the threads (contiguous channel ranges of that sample). Each plane is written by exactly one range.
    /// </summary>
    private static void PerSample(int n, int c, Action<int, Action<Action<int, int>>> body)
    {
        int threads = Compute.MaxThreads;
        if (threads == 1 || n >= threads)
        {
            Compute.For(n, b => body(b, range => range(b * c, (b + 1) * c)));
            return;
        }
        int chunks = Math.Min(c, threads * 4);
        for (int b = 0; b < n; b++)
        {
            int bb = b;
            body(b, range => Compute.For(chunks, k => range(bb * c + (int)((long)c * k / chunks), bb * c + (int)((long)c * (k + 1) / chunks))));
        }
    }

    /// <summary>Per-call buffers and the per-sample FC steps (index q = n·C + c for [N, C] quantities).</summary>
    private sealed class Work
    {
        private readonly SeOptions _o;
        private readonly int _plane;
        internal readonly float Count;
        internal readonly bool Wide = SeKernels.UseVector512;
        internal readonly float[] Z, H, R, E, S;
        internal readonly int[]? ArgMax;
        internal readonly float[] Ds = [], De = [], Dh = [], Dz = [];

        internal Work(SeOptions o, int n, int plane, bool max, bool backward, SeForwardState<float>? st = null)
        {
            _o = o;
            _plane = plane;
            Count = plane;
            int c = o.Channels, hid = o.Hidden;
            if (st is null)
            {
                Z = new float[n * c];
                H = new float[n * hid];
                R = new float[n * hid];
                E = new float[n * c];
                S = new float[n * c];
                ArgMax = max ? new int[n * c] : null;
            }
            else
            {
                Z = st.Z.Data;
                H = st.H.Data;
                R = st.R.Data;
                E = st.E.Data;
                S = st.S.Data;
                ArgMax = st.ArgMax;
            }
            if (backward)
            {
                Ds = new float[n * c];
                De = new float[n * c];
                Dh = new float[n * hid];
                Dz = new float[n * c];
            }
        }

        /// <summary>Eq. (se.1)/(se.2) for planes [q0, q1), and Eq. (se.8) in the same pass when <paramref name="gd"/> is given (avg).</summary>
        internal void Squeeze(float[] xd, float[]? gd, int q0, int q1)
        {
            int plane = _plane;
            for (int q = q0; q < q1; q++)
            {
                var xs = new ReadOnlySpan<float>(xd, q * plane, plane);
                if (ArgMax is null)
                {
                    if (gd is null) Z[q] = SeKernels.Sum(Wide, xs) / Count;
                    else
                    {
                        (float sum, Ds[q]) = SeKernels.SumAndDot(Wide, xs, new ReadOnlySpan<float>(gd, q * plane, plane));
                        Z[q] = sum / Count;
                    }
                }
                else
                {
                    (Z[q], ArgMax[q]) = SeKernels.MaxArg(Wide, xs);
                    if (gd is not null) Ds[q] = SeKernels.Dot(Wide, new ReadOnlySpan<float>(gd, q * plane, plane), xs);
                }
            }
        }

        /// <summary>Eqs. (se.3)–(se.6) for sample b (FC dot products vectorised over the input feature, bias added last).</summary>
        internal void Excite(SeParameters<float> p, int b)
        {
            int c = _o.Channels, hid = _o.Hidden;
            var w1 = p.W1.Data;
            var w2 = p.W2.Data;
            var zb = new ReadOnlySpan<float>(Z, b * c, c);
            for (int j = 0; j < hid; j++)
            {
                float v = TensorPrimitives.Dot(new ReadOnlySpan<float>(w1, j * c, c), zb);
                if (p.B1 is not null) v += p.B1.Data[j];
                H[b * hid + j] = v;
                R[b * hid + j] = Activations.Relu(v);
            }
            var rb = new ReadOnlySpan<float>(R, b * hid, hid);
            for (int k = 0; k < c; k++)
            {
                float v = TensorPrimitives.Dot(new ReadOnlySpan<float>(w2, k * hid, hid), rb);
                if (p.B2 is not null) v += p.B2.Data[k];
                E[b * c + k] = v;
                S[b * c + k] = SeGates.Apply(_o.Gate, v);
            }
        }

        /// <summary>Eqs. (se.9), (se.12), (se.13), (se.16) for sample b: de, dr (sum over c in increasing order), dh, dz (sum over j).</summary>
        internal void ExciteBackward(SeParameters<float> p, int b)
        {
            int c = _o.Channels, hid = _o.Hidden;
            for (int k = b * c; k < (b + 1) * c; k++)
                De[k] = Ds[k] * SeGates.Grad(_o.Gate, E[k], S[k]);
            var w1 = p.W1.Data;
            var w2 = p.W2.Data;
            Span<float> dr = hid <= 256 ? stackalloc float[hid] : new float[hid];
            dr.Clear();
            for (int k = 0; k < c; k++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w2, k * hid, hid), De[b * c + k], dr, dr);
            for (int j = 0; j < hid; j++) Dh[b * hid + j] = dr[j] * Activations.ReluGrad(H[b * hid + j]);
            var dzb = new Span<float>(Dz, b * c, c);
            dzb.Clear();
            for (int j = 0; j < hid; j++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(w1, j * c, c), Dh[b * hid + j], dzb, dzb);
        }

        /// <summary>Eq. (se.17)/(se.18) for planes [q0, q1).</summary>
        internal void WriteDx(float[] gd, float[] dxd, int q0, int q1)
        {
            int plane = _plane;
            for (int q = q1 - 1; q >= q0; q--) // reverse: the planes the ds pass touched last are still in L2
            {
                var dst = new Span<float>(dxd, q * plane, plane);
                if (ArgMax is null) SeKernels.ScaleAdd(Wide, new ReadOnlySpan<float>(gd, q * plane, plane), S[q], Dz[q] / Count, dst);
                else
                {
                    SeKernels.Scale(Wide, new ReadOnlySpan<float>(gd, q * plane, plane), S[q], dst);
                    dst[ArgMax[q]] += Dz[q];
                }
            }
        }

        /// <summary>Eqs. (se.10), (se.11), (se.14), (se.15): batch sums, sequential in n.</summary>
        internal SeGradients<float> ParameterGradients(DenseTensor<float> dx)
        {
            int n = Z.Length / _o.Channels, c = _o.Channels, hid = _o.Hidden;
            var dW2 = new DenseTensor<float>(c, hid);
            var dW1 = new DenseTensor<float>(hid, c);
            var db2 = _o.Bias ? new DenseTensor<float>(c) : null;
            var db1 = _o.Bias ? new DenseTensor<float>(hid) : null;
            for (int b = 0; b < n; b++)
            {
                var rb = new ReadOnlySpan<float>(R, b * hid, hid);
                for (int k = 0; k < c; k++)
                {
                    var row = new Span<float>(dW2.Data, k * hid, hid);
                    TensorPrimitives.MultiplyAdd(rb, De[b * c + k], row, row);
                    if (db2 is not null) db2.Data[k] += De[b * c + k];
                }
                var zb = new ReadOnlySpan<float>(Z, b * c, c);
                for (int j = 0; j < hid; j++)
                {
                    var row = new Span<float>(dW1.Data, j * c, c);
                    TensorPrimitives.MultiplyAdd(zb, Dh[b * hid + j], row, row);
                    if (db1 is not null) db1.Data[j] += Dh[b * hid + j];
                }
            }
            return new SeGradients<float> { Dx = dx, DW1 = dW1, DB1 = db1, DW2 = dW2, DB2 = db2 };
        }

        internal SeForwardState<float> State(DenseTensor<float> x, DenseTensor<float> y, int hid)
        {
            int n = x.Dim(0), c = _o.Channels;
            return new SeForwardState<float>
            {
                X = x, Z = new DenseTensor<float>(Z, n, c), ArgMax = ArgMax, H = new DenseTensor<float>(H, n, hid),
                R = new DenseTensor<float>(R, n, hid), E = new DenseTensor<float>(E, n, c), S = new DenseTensor<float>(S, n, c), Y = y,
            };
        }
    }

    private static DenseTensor<float> Output(DenseTensor<float>? given, DenseTensor<float> x, string name)
    {
        if (given is null) return new DenseTensor<float>(GC.AllocateUninitializedArray<float>(x.Length), x.ShapeArray());
        ShapeUtil.Require(given, name, x.ShapeArray());
        if (ReferenceEquals(given.Data, x.Data)) throw new ArgumentException($"{name} must not share x's storage.", name);
        return given;
    }
}

/// <summary>
/// Vectorised float32 plane kernels for the SE fast path (W = 16 lanes with Vector512, else Vector&lt;float&gt;.Count).
/// Sum and Dot keep four vector accumulators: blocks of 4W elements go round-robin into a0..a3, the remaining whole
/// vectors into a0; they are combined as ((a0 + a1) + (a2 + a3)), the lanes summed, then the scalar tail added in
/// increasing index order. SumAndDot does the same with two accumulators per result. A fixed order for a given path
/// and length, independent of the thread that runs it. The caller passes the path (<c>wide</c>), read once per call.
/// </summary>
internal static class SeKernels
{
    /// <summary>
    /// Whether the Vector512 path is used: <see cref="SimdWidth.Use512"/> (tests force the portable Vector&lt;float&gt;
    /// path through <see cref="SimdWidth.With{T}"/>). Read once per public call.
    /// </summary>
    internal static bool UseVector512 => SimdWidth.Use512;

    internal static float Sum(bool wide, ReadOnlySpan<float> x)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        int len = x.Length, i = 0;
        float total;
        if (wide && len >= 16)
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

    internal static float Dot(bool wide, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        int len = a.Length, i = 0;
        float total;
        if (wide && len >= 16)
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
    internal static (float Sum, float Dot) SumAndDot(bool wide, ReadOnlySpan<float> x, ReadOnlySpan<float> g)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(g);
        int len = x.Length, i = 0;
        float sum, dot;
        if (wide && len >= 16)
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
    internal static void Scale(bool wide, ReadOnlySpan<float> x, float s, Span<float> y)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float py = ref MemoryMarshal.GetReference(y);
        int len = x.Length, i = 0;
        if (wide)
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
    internal static void ScaleAdd(bool wide, ReadOnlySpan<float> g, float s, float add, Span<float> dx)
    {
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float pd = ref MemoryMarshal.GetReference(dx);
        int len = g.Length, i = 0;
        if (wide)
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
    internal static void ScaleBoth(bool wide, ReadOnlySpan<float> x, ReadOnlySpan<float> g, float s, float add, Span<float> y, Span<float> dx)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        ref float pg = ref MemoryMarshal.GetReference(g);
        ref float py = ref MemoryMarshal.GetReference(y);
        ref float pd = ref MemoryMarshal.GetReference(dx);
        int len = x.Length, i = 0;
        if (wide)
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
    /// The plane's max and its flat index with PyTorch's rule (Eq. (se.2)): scanning from −∞ at index 0, a value is
    /// taken when it is strictly greater or NaN. Ties keep the first maximal index, a NaN wins (the last NaN), and −0
    /// before +0 keeps −0. Vectorised: one pass finds the maximum value and whether a NaN is present (then the exact
    /// scalar scan runs); a second pass finds the first index equal to it (−0 == +0, so the first of a tied pair of
    /// zeros is found, and its own value, with its sign, is returned).
    /// </summary>
    internal static (float Max, int Index) MaxArg(bool wide, ReadOnlySpan<float> x)
    {
        ref float px = ref MemoryMarshal.GetReference(x);
        int len = x.Length, i = 0;
        float m = float.NegativeInfinity;
        bool nan = false;
        if (wide && len >= 16)
        {
            var mx = Vector512.Create(float.NegativeInfinity);
            var bad = Vector512<float>.Zero;
            for (; i <= len - 16; i += 16)
            {
                var v = Vector512.LoadUnsafe(ref px, (nuint)i);
                mx = Vector512.Max(mx, v);
                bad |= ~Vector512.Equals(v, v);
            }
            nan = bad != Vector512<float>.Zero;
            m = Vector512.Max(mx, Vector512.Create(float.NegativeInfinity)).ToScalar();
            for (int k = 1; k < 16; k++) m = Math.Max(m, mx.GetElement(k));
        }
        else if (Vector.IsHardwareAccelerated && len >= Vector<float>.Count)
        {
            var mx = new Vector<float>(float.NegativeInfinity);
            var bad = Vector<float>.Zero;
            for (; i <= len - Vector<float>.Count; i += Vector<float>.Count)
            {
                var v = Vector.LoadUnsafe(ref px, (nuint)i);
                mx = Vector.Max(mx, v);
                bad |= ~Vector.Equals(v, v).As<int, float>();
            }
            nan = bad != Vector<float>.Zero;
            for (int k = 0; k < Vector<float>.Count; k++) m = Math.Max(m, mx[k]);
        }
        for (; i < len; i++)
        {
            float v = Unsafe.Add(ref px, i);
            if (float.IsNaN(v)) nan = true;
            else m = Math.Max(m, v);
        }
        if (nan) return MaxArgScalar(x);
        for (int k = 0; k < len; k++)
            if (Unsafe.Add(ref px, k) == m) return (Unsafe.Add(ref px, k), k);
        return (float.NegativeInfinity, 0); // unreachable for len ≥ 1: m is one of the values
    }

    /// <summary>The scalar scan of <see cref="MaxArg"/>, exactly PyTorch's loop.</summary>
    internal static (float Max, int Index) MaxArgScalar(ReadOnlySpan<float> x)
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
