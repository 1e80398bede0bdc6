using Attention.Reference.Kernels;
using Attention.Reference.Ops;

namespace Attention.Reference.Layers;

/// <summary>
/// <c>nn.AdaptiveAvgPool2d(1)</c>: [N, C, H, W] → [N, C, 1, 1], each mean a sequential sum over (h, w) ascending
/// divided once by H·W (Eq. (pool.1)).
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class AdaptiveAvgPool2d<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public override string Kind => "AdaptiveAvgPool2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input);
        return [input[0], input[1], 1, 1];
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W");
        if (pass.RecordTape) Save(pass, x.ShapeArray());
        var output = pass.Uninitialized(this, "y", [x.Dim(0), x.Dim(1), 1, 1]);
        GlobalPool.AvgForward(x, output, pass.SumOrder);
        return output;
    }

    /// <summary>GlobalAveragePool: the same sequential sum divided once.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        return writer.Node(this, "GlobalAveragePool", [input], [s[0], s[1], 1, 1]);
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var shape = Restore<int[]>(pass);
        var dx = new DenseTensor<T>(shape);
        GlobalPool.AvgBackwardAccumulate(dy.Reshape(shape[0], shape[1]), dx); // Eq. (pool.2)
        return dx;
    }
}

/// <summary><c>nn.Flatten(1)</c>: [N, ...] → [N, product of the rest].</summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class Flatten<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public override string Kind => "Flatten";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        long rest = ShapePlan.Volume(input[1..]);
        if (rest > int.MaxValue) throw new ArgumentException($"{DisplayName}: flattening {ShapeUtil.Format(input)} gives {rest} features, too many.");
        return [input[0], (int)rest];
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (pass.RecordTape) Save(pass, x.ShapeArray());
        int n = x.Dim(0), rest = x.Length / Math.Max(1, n);
        if (!pass.InPlaceAllowed) return x.Reshape(n, rest);
        // Nothing observes it: the view is kept while the input buffer is the same (in an inference plan it is,
        // forward after forward, so a plan's forward allocates no view).
        if (_view is null || !ReferenceEquals(_view.Data, x.Data) || !_view.HasShape([n, rest])) _view = x.Reshape(n, rest);
        return _view;
    }

    private DenseTensor<T>? _view;

    /// <summary>Flatten (axis 1).</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        return writer.Node(this, "Flatten", [input], [s[0], s[1..].Aggregate(1, (a, d) => a * d)], new Dictionary<string, object> { ["axis"] = 1L });
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass) => dy.Reshape(Restore<int[]>(pass));
}

/// <summary>
/// <c>nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode)</c>. Each window is scanned in row-major
/// order from −∞ exactly as PyTorch's CPU kernel: a value is taken when it is strictly greater or NaN, so ties keep
/// the FIRST maximal index and the gradient goes there; padding never wins. The backward adds each output's
/// gradient to its argmax in output order (overlapping windows accumulate), plane by plane.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class MaxPool2d<T> : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <summary>Creates the layer (stride defaults to the kernel size, as PyTorch).</summary>
    public MaxPool2d(int kernel, int? stride = null, int padding = 0, int dilation = 1, bool ceilMode = false)
    {
        int s = stride ?? kernel;
        if (kernel < 1 || s < 1 || dilation < 1 || padding < 0)
            throw new ArgumentException($"MaxPool2d: kernel_size {kernel}, stride {s}, dilation {dilation} must be positive and padding {padding} non-negative.");
        if (padding > kernel / 2)
            throw new ArgumentException($"MaxPool2d: pad should be at most half of effective kernel size, but got pad={padding}, kernel_size={kernel}.");
        Kernel = kernel;
        Stride = s;
        Padding = padding;
        Dilation = dilation;
        CeilMode = ceilMode;
    }

    /// <summary>Kernel size (square).</summary>
    public int Kernel { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Padding (implicit −∞).</summary>
    public int Padding { get; }
    /// <summary>Dilation.</summary>
    public int Dilation { get; }
    /// <summary>ceil_mode.</summary>
    public bool CeilMode { get; }

    /// <inheritdoc />
    public override string Kind => "MaxPool2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input);
        return [input[0], input[1], OutputSize(input[2]), OutputSize(input[3])];
    }

    /// <summary>PyTorch's pooling_output_shape: ⌊ or ⌈(L + 2p − d(k − 1) − 1)/s⌉ + 1, less one when the last window starts in the right padding.</summary>
    public int OutputSize(int length)
    {
        long num = (long)length + 2L * Padding - (long)Dilation * (Kernel - 1) - 1 + (CeilMode ? Stride - 1 : 0);
        long o = (num < 0 ? -((-num + Stride - 1) / Stride) : num / Stride) + 1;
        if (CeilMode && (o - 1) * Stride >= length + Padding) o--;
        if (o < 1)
            throw new ArgumentException($"{DisplayName}: input size {length} is too small for kernel_size {Kernel}, stride {Stride}, padding {Padding}, dilation {Dilation}.");
        return (int)o;
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W");
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int ho = OutputSize(h), wo = OutputSize(w);
        // Without a tape no argmax is recorded (nothing will run backward).
        var y = pass.Uninitialized(this, "y", [n, c, ho, wo]);
        var arg = pass.RecordTape ? new int[y.Length] : [];
        T[] xd = x.Data, yd = y.Data;
        int k = Kernel, s = Stride, p = Padding, d = Dilation;
        Compute.For(n * c, new Planes
        {
            X = xd, Y = yd, Arg = arg, H = h, W = w, Ho = ho, Wo = wo, K = k, S = s, P = p, D = d,
        });
        if (pass.RecordTape) Save(pass, (x.ShapeArray(), arg));
        return y;
    }

    /// <summary>One (n, c) plane of the max pool.</summary>
    private struct Planes : IForBody
    {
        public T[] X, Y;
        public int[] Arg;
        public int H, W, Ho, Wo, K, S, P, D;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int plane)
        {
            T[] xd = X, yd = Y;
            int[] arg = Arg;
            int h = H, w = W, ho = Ho, wo = Wo, k = K, s = S, p = P, d = D;
            int xo = plane * h * w, yo = plane * ho * wo;
            // Values only (inference): whole rows of windows at once, the same comparisons in the same order.
            if (arg.Length == 0 && typeof(T) == typeof(float))
            {
                MaxPoolRows.Plane(Unsafe.As<float[]>(xd).AsSpan(xo, h * w), Unsafe.As<float[]>(yd).AsSpan(yo, ho * wo), h, w, ho, wo, k, s, p, d);
                return;
            }
            if (arg.Length == 0 && typeof(T) == typeof(double))
            {
                MaxPoolRows.Plane(Unsafe.As<double[]>(xd).AsSpan(xo, h * w), Unsafe.As<double[]>(yd).AsSpan(yo, ho * wo), h, w, ho, wo, k, s, p, d);
                return;
            }
            for (int oh = 0; oh < ho; oh++)
                for (int ow = 0; ow < wo; ow++)
                {
                    int hs = oh * s - p, ws = ow * s - p;
                    T best = T.NegativeInfinity;
                    int bi = -1;
                    for (int i = 0; i < k; i++)
                    {
                        int ih = hs + i * d;
                        if (ih < 0 || ih >= h) continue;
                        for (int j = 0; j < k; j++)
                        {
                            int iw = ws + j * d;
                            if (iw < 0 || iw >= w) continue;
                            T v = xd[xo + ih * w + iw];
                            if (bi < 0 || v > best || T.IsNaN(v)) { best = v; bi = ih * w + iw; }
                        }
                    }
                    yd[yo + oh * wo + ow] = best;
                    if (arg.Length > 0) arg[yo + oh * wo + ow] = bi;
                }
        }
    }

    /// <summary>MaxPool with the same kernel, stride, padding, dilation and ceil_mode.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        var o = OnInferShape(s, new ShapePlan());
        return writer.Node(this, "MaxPool", [input], o, new Dictionary<string, object>
        {
            ["ceil_mode"] = CeilMode ? 1L : 0L,
            ["dilations"] = new[] { Dilation, Dilation },
            ["kernel_shape"] = new[] { Kernel, Kernel },
            ["pads"] = new[] { Padding, Padding, Padding, Padding },
            ["strides"] = new[] { Stride, Stride },
        });
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var (shape, arg) = Restore<(int[], int[])>(pass);
        var dx = new DenseTensor<T>(shape);
        int planeIn = shape[2] * shape[3], planeOut = dy.Dim(2) * dy.Dim(3);
        T[] gd = dy.Data, dxd = dx.Data;
        Compute.For(shape[0] * shape[1], plane =>
        {
            int xo = plane * planeIn, yo = plane * planeOut;
            for (int i = 0; i < planeOut; i++)
                if (arg[yo + i] >= 0) dxd[xo + arg[yo + i]] += gd[yo + i];
        });
        return dx;
    }
}

/// <summary>
/// <c>nn.AdaptiveAvgPool2d((None, 1))</c> (the mean over w: [N, C, H, 1]) or <c>((1, None))</c> (the mean over h:
/// [N, C, 1, W]), Coordinate Attention's directional pools, Eqs. (pool.5)–(pool.6): each mean a sequential sum in
/// increasing index order, divided once.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed class DirectionalAvgPool2d<T>(bool overWidth) : Layer<T> where T : IFloatingPointIeee754<T>
{
    /// <inheritdoc />
    public override string Kind => "AdaptiveAvgPool2d";

    /// <inheritdoc />
    protected override int[] OnInferShape(int[] input, ShapePlan plan)
    {
        RequireNchw(input);
        return overWidth ? [input[0], input[1], input[2], 1] : [input[0], input[1], 1, input[3]];
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnForward(DenseTensor<T> x, Pass<T> pass)
    {
        if (x.Rank != 4) ShapeUtil.RequireRank(x, DisplayName + " input", 4, "N, C, H, W");
        int nc = x.Dim(0) * x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int oh = overWidth ? h : 1, ow = overWidth ? 1 : w;
        var y = pass.Uninitialized(this, "y", [x.Dim(0), x.Dim(1), oh, ow]);
        if (overWidth)
        {
            // The row means: one sequential chain per row, rows side by side on the plane-reduction engine.
            Kernels.PlaneReduce.Sums<Kernels.ValueTerm<T>, T>(x.Data, x.Data, nc * h, w, y.Data);
            T count = T.CreateChecked(w);
            var yd = y.Data;
            for (int k = 0; k < nc * h; k++) yd[k] /= count;
        }
        else Compute.For(nc, new ColumnMeans { X = x.Data, Y = y.Data, H = h, W = w });
        if (pass.RecordTape) Save(pass, x.ShapeArray());
        return y;
    }

    /// <summary>
    /// One (n, c) plane's column means (over h), each a sequential sum in increasing index order divided once, the
    /// columns in vector lanes: every chain is the plain loop's, so the bits are the same on every path. (The row means
    /// run on <see cref="Kernels.PlaneReduce"/>.)
    /// </summary>
    private struct ColumnMeans : IForBody
    {
        public T[] X, Y;
        public int H, W;

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int p)
        {
            int h = H, w = W, o = p * h * w;
            T[] xd = X, yd = Y;
            T count = T.CreateChecked(h);
            int j = 0;
            if (System.Numerics.Vector.IsHardwareAccelerated && System.Numerics.Vector<T>.IsSupported)
            {
                int v = System.Numerics.Vector<T>.Count;
                var vc = new System.Numerics.Vector<T>(count);
                if (v <= w)
                {
                    for (; ; j += v)
                    {
                        if (j + v > w) j = w - v; // the last vector ends at the row's end: overlapping columns recomputed
                        var sum = System.Numerics.Vector<T>.Zero;
                        for (int i = 0; i < h; i++) sum += new System.Numerics.Vector<T>(xd, o + i * w + j);
                        (sum / vc).CopyTo(yd, p * w + j);
                        if (j + v >= w) break;
                    }
                    j = w;
                }
            }
            for (; j < w; j++)
            {
                T sum = T.Zero;
                for (int i = 0; i < h; i++) sum += xd[o + i * w + j];
                yd[p * w + j] = sum / count;
            }
        }
    }

    /// <summary>AveragePool with kernel [1, W] (over the width) or [H, 1], as PyTorch exports the adaptive pools.</summary>
    protected override string OnExport(IGraphWriter<T> writer, string input)
    {
        var s = writer.Shape(input);
        int[] k = overWidth ? [1, s[3]] : [s[2], 1];
        int[] o = overWidth ? [s[0], s[1], s[2], 1] : [s[0], s[1], 1, s[3]];
        return writer.Node(this, "AveragePool", [input], o, new Dictionary<string, object> { ["kernel_shape"] = k, ["strides"] = k });
    }

    /// <inheritdoc />
    protected override DenseTensor<T> OnBackward(DenseTensor<T> dy, Pass<T> pass)
    {
        var shape = Restore<int[]>(pass);
        int nc = shape[0] * shape[1], h = shape[2], w = shape[3];
        var dx = new DenseTensor<T>(shape);
        T[] gd = dy.Data, dxd = dx.Data;
        T count = T.CreateChecked(overWidth ? w : h);
        Compute.For(nc, p =>
        {
            int o = p * h * w;
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                    dxd[o + i * w + j] = (overWidth ? gd[p * h + i] : gd[p * w + j]) / count;
        });
        return dx;
    }
}

/// <summary>
/// The max pool's values without argmax, a row of windows at a time: for each output row and each window tap (i, j) in
/// the scalar loop's order (i, then j), the tap's inputs for every interior output column are gathered into a row and
/// folded in with the same rule as the scalar loop (take v when v &gt; best or v is NaN), vectorised over the row; the
/// border columns, whose windows leave the input, run the scalar loop. So the bits equal the scalar loop's, signed
/// zeros and NaN payloads included.
/// </summary>
internal static class MaxPoolRows
{
    [ThreadStatic] private static float[]? t_f;
    [ThreadStatic] private static double[]? t_d;

    private static Span<TU> Buffer<TU>(int length) where TU : unmanaged
    {
        if (typeof(TU) == typeof(float))
        {
            if (t_f is null || t_f.Length < length) t_f = new float[length];
            return System.Runtime.InteropServices.MemoryMarshal.Cast<float, TU>(t_f.AsSpan(0, length));
        }
        if (t_d is null || t_d.Length < length) t_d = new double[length];
        return System.Runtime.InteropServices.MemoryMarshal.Cast<double, TU>(t_d.AsSpan(0, length));
    }

    /// <summary>One (n, c) plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Plane<TU>(ReadOnlySpan<TU> x, Span<TU> y, int h, int w, int ho, int wo, int k, int s, int p, int d)
        where TU : unmanaged, IFloatingPointIeee754<TU>
    {
        // Interior columns: every tap column in range, ow·s − p ≥ 0 and ow·s − p + (k − 1)·d ≤ w − 1.
        int lo = Math.Min(wo, (p + s - 1) / s), hi = Math.Max(lo, Math.Min(wo, (w - 1 - (k - 1) * d + p) / s + 1));
        if ((w - 1 - (k - 1) * d + p) < 0) hi = lo;
        int width = hi - lo;
        var tap = Buffer<TU>(2 * Math.Max(width, 1));
        var row = tap[width..(2 * width)];
        tap = tap[..width];
        for (int oh = 0; oh < ho; oh++)
        {
            int hs = oh * s - p;
            bool first = true;
            for (int i = 0; i < k && width > 0; i++)
            {
                int ih = hs + i * d;
                if (ih < 0 || ih >= h) continue;
                for (int j = 0; j < k; j++)
                {
                    int start = ih * w + lo * s - p + j * d;
                    if (first) { Strided.Gather(x, start, s, row); first = false; continue; }
                    Strided.Gather(x, start, s, tap);
                    Fold(tap, row);
                }
            }
            if (first) row.Fill(TU.NegativeInfinity); // no window row in range (the scalar loop's initial value)
            if (width > 0) row.CopyTo(y.Slice(oh * wo + lo, width));
            for (int ow = 0; ow < wo; ow++)
            {
                if (ow == lo && hi > lo) { ow = hi - 1; continue; }
                int ws = ow * s - p;
                TU best = TU.NegativeInfinity;
                bool any = false;
                for (int i = 0; i < k; i++)
                {
                    int ih = hs + i * d;
                    if (ih < 0 || ih >= h) continue;
                    for (int j = 0; j < k; j++)
                    {
                        int iw = ws + j * d;
                        if (iw < 0 || iw >= w) continue;
                        TU v = x[ih * w + iw];
                        if (!any || v > best || TU.IsNaN(v)) { best = v; any = true; }
                    }
                }
                y[oh * wo + ow] = best;
            }
        }
    }

    /// <summary>best ← v where v &gt; best or v is NaN, element by element.</summary>
    private static void Fold<TU>(ReadOnlySpan<TU> v, Span<TU> best) where TU : unmanaged, IFloatingPointIeee754<TU>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var vv = System.Runtime.InteropServices.MemoryMarshal.Cast<TU, Vector<TU>>(v);
            var bb = System.Runtime.InteropServices.MemoryMarshal.Cast<TU, Vector<TU>>(best);
            for (int c = 0; c < vv.Length; c++)
            {
                var a = vv[c];
                var take = Vector.GreaterThan(a, bb[c]) | ~Vector.Equals(a, a);
                bb[c] = Vector.ConditionalSelect(take, a, bb[c]);
            }
            i = vv.Length * Vector<TU>.Count;
        }
        for (; i < v.Length; i++)
            if (v[i] > best[i] || TU.IsNaN(v[i])) best[i] = v[i];
    }
}
