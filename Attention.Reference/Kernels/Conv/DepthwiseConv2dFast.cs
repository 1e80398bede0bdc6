using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// The depthwise convolution (groups = I = O: one kh × kw filter per channel, any stride, padding and dilation) as
/// its own kernel: every (image, channel) plane is one work unit that zero-pads and phase-splits its input into a
/// thread-local buffer (L1/L2-resident), correlates it with the channel's taps over the output grid Ho × Wq in SIMD
/// registers, and writes its valid columns, so the tensors are read and written once. The dense kernel runs a
/// depthwise layer with one useful row in its 8-row register tile.
/// <para>
/// It computes exactly the summation orders that docs/derivations/conv2d.md defines for the dense kernel (the
/// "Summation order" section and its depthwise paragraph), so its results are bitwise those of the dense kernel
/// (tests hold the two against each other, and against the spec kernel): y, one FMA chain over the taps (p, q)
/// increasing from 0, padding included as w·0, then + b; x̄ at stride 1, the flipped kernel's forward chain; x̄
/// strided, per phase the taps (p, q) increasing, fused (conv.14) or as col2im's rounded products added from 0
/// (conv.9–conv.10), whichever the dense kernel would use; w̄, the lane sums and chunks of conv.11–conv.12. Each
/// element's result therefore does not depend on the thread count or on the vector width.
/// </para>
/// </summary>
/// <typeparam name="TF">float or double.</typeparam>
internal static class DepthwiseConv2dFast<TF> where TF : unmanaged, IFloatingPointIeee754<TF>
{
    [ThreadStatic] private static TF[]? t_src;  // worker: the zero-padded, phase-split source plane
    [ThreadStatic] private static TF[]? t_grid; // worker: the output grid of one plane
    [ThreadStatic] private static TF[]? t_dy;   // worker: dy on the grid (weight gradient)

    /// <summary>Output elements per register block of the correlation: four registers.</summary>
    private const int Unroll = 4;

    /// <summary>Elements per lane group of the weight gradient: 64 bytes (16 float, 8 double), as in conv.11.</summary>
    private static int Lanes => 64 / Unsafe.SizeOf<TF>();

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    private static TF[] Grow(ref TF[]? buffer, int length)
    {
        if (buffer is null || buffer.Length < length) buffer = new TF[Math.Max(length, 64)];
        return buffer;
    }

    private static int Block => Unroll * 64 / Unsafe.SizeOf<TF>(); // the widest register block (Vector512)

    /// <summary>Where grid element (row u &lt; rows, column v &lt; cols) of a plane goes: base + u·rowStride + v·colStride.</summary>
    private readonly record struct Scatter(int Rows, int Cols, int Base, int RowStride, int ColStride);

    // ---------------------------------------------------------------- forward, Eq. (conv.7)

    /// <summary>y = conv(x, w) + b for a depthwise geometry.</summary>
    public static void Forward(DenseTensor<TF> x, DenseTensor<TF> weight, DenseTensor<TF>? bias, Conv2dGeometry g, DenseTensor<TF> y,
        IConvEpilogue<TF>? epilogue = null)
    {
        int n = x.Dim(0), c = g.InChannels, h = x.Dim(2), w = x.Dim(3), ho = y.Dim(2), wo = y.Dim(3);
        int kh = g.Kernel.H, kw = g.Kernel.W, k = kh * kw;
        var ph = Phases.Of(h, w, g.Stride, g.Padding);
        var (off, widx) = Taps(k);
        for (int t = 0; t < k; t++)
        {
            off[t] = ph.TapOffset(t / kw * g.Dilation.H, t % kw * g.Dilation.W);
            widx[t] = t;
        }
        var scatter = new Scatter(ho, wo, 0, wo, 1);
        Correlate(x.Data, h * w, ph, off, widx, weight.Data, bias?.Data, fused: true, c, n * c, y.Data, ho * wo, ho, scatter, clear: false, epilogue);
    }

    [ThreadStatic] private static TF[]? t_lanesIn;  // worker: a band of one image's block of channels, padded, [rows][Wp][L]
    [ThreadStatic] private static TF[]? t_lanesOut; // worker: the band's outputs, [rows][Wo][L]
    [ThreadStatic] private static TF[]? t_lanesFlat; // worker: rows narrower than L transposed unpadded, [rows·W][L]

    /// <summary>
    /// The same y = conv(x, w) + b with channels in vector lanes: a work unit is one image's block of L channels (L = the
    /// vector's lanes) and a band of output rows; it copies the rows the band reads, zero-padded, into [rows][Wp][L],
    /// computes every output
    /// position as L lanes — one FMA chain over the taps (p, q) increasing from +0, the padding's taps included as w·0,
    /// exactly the plane form's chain — writes the planes back, + b after the sum, and applies the epilogue per plane.
    /// Lanes past the last channel compute zeros that are never written. Same bits as <see cref="Forward"/>.
    /// </summary>
    public static void ForwardLanes(DenseTensor<TF> x, DenseTensor<TF> weight, DenseTensor<TF>? bias, Conv2dGeometry g,
        DenseTensor<TF> y, IConvEpilogue<TF>? epilogue = null)
    {
        var unit = new LanesUnit
        {
            X = x.Data, W = weight.Data, B = bias?.Data, Y = y.Data, Epilogue = epilogue, G = g, Path = Conv2dTuning.Path,
            C = g.InChannels, H = x.Dim(2), Wd = x.Dim(3), Ho = y.Dim(2), Wo = y.Dim(3),
        };
        int lanes = unit.Lanes, blocks = Ceil(g.InChannels, lanes);
        // Bands of output rows whose padded input rows take at most LanesBandValues values (a quarter of a 1 MB L2 in
        // float): a 112 × 112 plane's block in one piece was 800 KB and ran no faster than the plane form.
        int rowValues = (x.Dim(3) + 2 * g.Padding.W) * lanes, reach = (g.Kernel.H - 1) * g.Dilation.H + 1;
        unit.BandRows = Math.Clamp((LanesBandValues / rowValues - reach) / g.Stride.H + 1, 1, Math.Max(1, y.Dim(2)));
        unit.Bands = Ceil(y.Dim(2), unit.BandRows);
        Compute.ForWork(x.Dim(0) * blocks * unit.Bands, unit, (long)y.Length * g.Kernel.H * g.Kernel.W);
    }

    /// <summary>The most values of one band's padded input block in <see cref="ForwardLanes"/>.</summary>
    private const int LanesBandValues = 64 * 1024;

    /// <summary>One (image, channel block, band of output rows) of <see cref="ForwardLanes"/>.</summary>
    private struct LanesUnit : IForBody
    {
        public TF[] X, W, Y;
        public TF[]? B;
        public IConvEpilogue<TF>? Epilogue;
        public Conv2dGeometry G;
        public SimdPath Path;
        public int C, H, Wd, Ho, Wo, BandRows, Bands;

        public readonly int Lanes => Path switch
        {
            SimdPath.Vector512 => Simd512<TF>.Count,
            SimdPath.Vector256 => Simd256<TF>.Count,
            _ => SimdPortable<TF>.Count,
        };

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int unit)
        {
            int lanes = Lanes, blocks = Ceil(C, lanes), band = unit % Bands, rest = unit / Bands;
            int img = rest / blocks, c0 = rest % blocks * lanes, count = Math.Min(lanes, C - c0);
            int kh = G.Kernel.H, kw = G.Kernel.W, k = kh * kw, h = H, w = Wd, wo = Wo, ph = G.Padding.H, pw = G.Padding.W;
            int u0 = band * BandRows, rows = Math.Min(BandRows, Ho - u0), wp = w + 2 * pw;
            // In: the padded input rows the band reads, [rowsIn][Wp][lanes] (padded row r0 + i at i), zeros outside x;
            // the taps [k][lanes] after them (zeros past C).
            int r0 = u0 * G.Stride.H, rowsIn = (rows - 1) * G.Stride.H + (kh - 1) * G.Dilation.H + 1, taps = rowsIn * wp * lanes;
            var inBuf = Grow(ref t_lanesIn, taps + k * lanes);
            var outBuf = Grow(ref t_lanesOut, rows * wo * lanes);
            inBuf.AsSpan(0, taps + k * lanes).Clear();
            int plane = h * w, outPlane = Ho * wo, xlo = Math.Max(0, r0 - ph), xhi = Math.Min(h, r0 + rowsIn - ph);
            long xBase = ((long)img * C + c0) * plane, yBase = ((long)img * C + c0) * outPlane + (long)u0 * wo;
            // A whole block of float channels moves by register transposes (16 × 16 on AVX-512, 8 × 8 on AVX); otherwise
            // lane by lane.
            bool squares = typeof(TF) == typeof(float) && count == lanes && ConvDispatch.ChannelTransposes(Path);
            ref TF x0 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(X), (nint)xBase);
            ref TF in0 = ref MemoryMarshal.GetArrayDataReference(inBuf);
            if (squares && w < lanes && xhi > xlo)
            {
                // Rows narrower than a square: the band's rows as one run of positions, transposed, then placed row by row.
                int n = (xhi - xlo) * w, pos = 0;
                var flat = Grow(ref t_lanesFlat, n * lanes);
                ref float s0 = ref Unsafe.As<TF, float>(ref Unsafe.Add(ref x0, xlo * w));
                ref float f0 = ref Unsafe.As<TF, float>(ref MemoryMarshal.GetArrayDataReference(flat));
                for (; pos + lanes <= n; pos += lanes)
                    Transpose(lanes, ref Unsafe.Add(ref s0, pos), plane, ref Unsafe.Add(ref f0, pos * lanes), lanes, false, ref Unsafe.NullRef<float>());
                for (; pos < n; pos++)
                    for (int j = 0; j < lanes; j++) Unsafe.Add(ref f0, pos * lanes + j) = Unsafe.Add(ref s0, j * plane + pos);
                for (int r = xlo; r < xhi; r++)
                    flat.AsSpan((r - xlo) * w * lanes, w * lanes).CopyTo(inBuf.AsSpan(((r + ph - r0) * wp + pw) * lanes));
                xhi = xlo; // placed
            }
            for (int r = xlo; r < xhi; r++)
            {
                ref TF dst = ref Unsafe.Add(ref in0, ((r + ph - r0) * wp + pw) * lanes);
                int v = 0;
                if (squares && w >= lanes)
                {
                    // Columns in squares of `lanes`, the last one ending at the row's end (overlapping columns are
                    // written twice with the same values).
                    ref float s0 = ref Unsafe.As<TF, float>(ref Unsafe.Add(ref x0, r * w));
                    ref float d0 = ref Unsafe.As<TF, float>(ref dst);
                    for (; v < w; v += lanes)
                    {
                        int at = Math.Min(v, w - lanes);
                        Transpose(lanes, ref Unsafe.Add(ref s0, at), plane, ref Unsafe.Add(ref d0, at * lanes), lanes, false,
                            ref Unsafe.NullRef<float>());
                    }
                    continue;
                }
                for (int j = 0; j < count; j++)
                    for (v = 0; v < w; v++) Unsafe.Add(ref dst, v * lanes + j) = Unsafe.Add(ref x0, j * plane + r * w + v);
            }
            for (int j = 0; j < count; j++)
                for (int t = 0; t < k; t++) inBuf[taps + t * lanes + j] = W[(c0 + j) * k + t];
            switch (Path)
            {
                case SimdPath.Vector512: Positions<Simd512<TF>>(inBuf, outBuf, taps, rows); break;
                case SimdPath.Vector256: Positions<Simd256<TF>>(inBuf, outBuf, taps, rows); break;
                default: Positions<SimdPortable<TF>>(inBuf, outBuf, taps, rows); break;
            }
            int done = 0, positions = rows * wo;
            if (squares)
            {
                // A square of positions and channels at a time, + b in the transpose (one rounded sum, as below).
                ref float o0 = ref Unsafe.As<TF, float>(ref MemoryMarshal.GetArrayDataReference(outBuf));
                ref float y0 = ref Unsafe.As<TF, float>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Y), (nint)yBase));
                ref float b0 = ref B is null ? ref Unsafe.NullRef<float>() : ref Unsafe.As<TF, float>(ref B[c0]);
                for (; done + lanes <= positions; done += lanes)
                    Transpose(lanes, ref Unsafe.Add(ref o0, done * lanes), lanes, ref Unsafe.Add(ref y0, done), outPlane, B is not null, ref b0);
            }
            for (int j = 0; j < count; j++)
            {
                var dst = Y.AsSpan((int)(yBase + (long)j * outPlane), positions);
                if (B is null) for (int i = done; i < positions; i++) dst[i] = outBuf[i * lanes + j];
                else
                {
                    TF b = B[c0 + j];
                    for (int i = done; i < positions; i++) dst[i] = outBuf[i * lanes + j] + b; // Eq. (conv.1): + b after the sum
                }
                Epilogue?.Apply(dst);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Transpose(int lanes, ref float s, nint sStride, ref float d, nint dStride, bool add, ref float rowAdd)
        {
            if (lanes == 16) Conv2dFast<float>.Transpose16(ref s, sStride, ref d, dStride, add, ref rowAdd);
            else Conv2dFast<float>.Transpose8(ref s, sStride, ref d, dStride, add, ref rowAdd);
        }

        /// <summary>
        /// out[u, v] = Σ_{p,q} taps[p, q]·in[u·sh + p·dh, v·sw + q·dw], lane by lane, one FMA chain per element over (p, q)
        /// increasing from +0; four output columns at a time share each tap's weights.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Positions<TV>(TF[] inBuf, TF[] outBuf, int taps, int rows) where TV : unmanaged, ISimd<TV, TF>
        {
            int l = TV.Count, kh = G.Kernel.H, kw = G.Kernel.W, ho = rows, wo = Wo, wp = Wd + 2 * G.Padding.W;
            int sh = G.Stride.H, sw = G.Stride.W, dh = G.Dilation.H, dw = G.Dilation.W;
            long last = ((long)((ho - 1) * sh + (kh - 1) * dh) * wp + (wo - 1) * sw + (kw - 1) * dw + 1) * l;
            if (last > taps || taps + kh * kw * l > inBuf.Length || (long)ho * wo * l > outBuf.Length)
                throw new InvalidOperationException("depthwise internal error: lanes buffers too small.");
            ref TF i0 = ref MemoryMarshal.GetArrayDataReference(inBuf);
            ref TF o0 = ref MemoryMarshal.GetArrayDataReference(outBuf);
            ref TF w0 = ref Unsafe.Add(ref i0, taps);
            nint step = sw * l;
            for (int u = 0; u < ho; u++)
            {
                int v = 0;
                for (; v + 4 <= wo; v += 4)
                {
                    TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
                    for (int p = 0; p < kh; p++)
                    {
                        ref TF row = ref Unsafe.Add(ref i0, ((u * sh + p * dh) * wp + v * sw) * l);
                        ref TF wr = ref Unsafe.Add(ref w0, p * kw * l);
                        for (int q = 0; q < kw; q++)
                        {
                            var wv = TV.Load(ref wr, (nuint)(q * l));
                            ref TF s = ref Unsafe.Add(ref row, q * dw * l);
                            a0 = TV.FusedMultiplyAdd(wv, TV.Load(ref s, 0), a0);
                            a1 = TV.FusedMultiplyAdd(wv, TV.Load(ref s, (nuint)step), a1);
                            a2 = TV.FusedMultiplyAdd(wv, TV.Load(ref s, (nuint)(2 * step)), a2);
                            a3 = TV.FusedMultiplyAdd(wv, TV.Load(ref s, (nuint)(3 * step)), a3);
                        }
                    }
                    ref TF d = ref Unsafe.Add(ref o0, (u * wo + v) * l);
                    TV.Store(a0, ref d, 0);
                    TV.Store(a1, ref d, (nuint)l);
                    TV.Store(a2, ref d, (nuint)(2 * l));
                    TV.Store(a3, ref d, (nuint)(3 * l));
                }
                for (; v < wo; v++)
                {
                    TV a = TV.Zero;
                    for (int p = 0; p < kh; p++)
                        for (int q = 0; q < kw; q++)
                            a = TV.FusedMultiplyAdd(TV.Load(ref w0, (nuint)((p * kw + q) * l)),
                                TV.Load(ref i0, (nuint)((((u * sh + p * dh) * wp) + v * sw + q * dw) * l)), a);
                    TV.Store(a, ref o0, (nuint)((u * wo + v) * l));
                }
            }
        }
    }

    /// <summary>
    /// For each of <paramref name="planes"/> planes (channel = plane mod channels): phase-split the source plane,
    /// correlate it over the grid gridRows × Wq with the channel's taps (weight[channel·K + widx[t]] at offset off[t]),
    /// and write the grid's valid part through <paramref name="scatter"/> (+ bias).
    /// </summary>
    private static void Correlate(TF[] src, int srcPlane, Phases ph, int[] off, int[] widx, TF[] wData, TF[]? bData, bool fused,
        int channels, int planes, TF[] dst, int dstPlane, int gridRows, Scatter scatter, bool clear, IConvEpilogue<TF>? epilogue = null)
    {
        var path = Conv2dTuning.Path;
        int k = wData.Length / channels;
        int gridLen = Ceil(gridRows * ph.Wq, Block) * Block;
        int need = Math.Max(ph.Total, off.Max() + gridLen);
        Compute.For(planes, new CorrelatePlane
        {
            Src = src, SrcPlane = srcPlane, Ph = ph, Off = off, Widx = widx, WData = wData, BData = bData, Fused = fused,
            Channels = channels, K = k, Dst = dst, DstPlane = dstPlane, Scatter = scatter, Clear = clear, Epilogue = epilogue,
            Path = path, Need = need, GridLen = gridLen,
        });
    }

    /// <summary>One plane of <see cref="Correlate"/>.</summary>
    private struct CorrelatePlane : IForBody
    {
        public TF[] Src, WData, Dst;
        public TF[]? BData;
        public int[] Off, Widx;
        public Phases Ph;
        public Scatter Scatter;
        public IConvEpilogue<TF>? Epilogue;
        public SimdPath Path;
        public int SrcPlane, Channels, K, DstPlane, Need, GridLen;
        public bool Fused, Clear;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int pl)
        {
            int ch = pl % Channels;
            var buf = Grow(ref t_src, Need);
            Ph.Fill(Src.AsSpan(pl * SrcPlane, SrcPlane), buf);
            buf.AsSpan(Ph.Total, Need - Ph.Total).Clear();
            var grid = Grow(ref t_grid, GridLen);
            Span<TF> taps = stackalloc TF[Off.Length];
            for (int t = 0; t < Off.Length; t++) taps[t] = WData[ch * K + Widx[t]];
            Run(Path, Fused, buf, Off, taps, grid, GridLen);
            var plane = Dst.AsSpan(pl * DstPlane, DstPlane);
            if (Clear) plane.Clear();
            Write(grid, Ph.Wq, Scatter, plane, BData is null ? null : BData[ch]);
            Epilogue?.Apply(plane);
        }
    }

    [ThreadStatic] private static Dictionary<int, (int[] Off, int[] Widx)>? t_taps;

    /// <summary>Tap tables of length k, reused per caller thread (filled by the caller before each use).</summary>
    private static (int[] Off, int[] Widx) Taps(int k)
    {
        var d = t_taps ??= new Dictionary<int, (int[], int[])>();
        if (!d.TryGetValue(k, out var t)) d[k] = t = (new int[k], new int[k]);
        return t;
    }

    private static void Run(SimdPath path, bool fused, TF[] buf, int[] off, ReadOnlySpan<TF> taps, TF[] grid, int len)
    {
        switch (path, fused)
        {
            case (SimdPath.Vector512, true): Taps<Simd512<TF>, Fused>(buf, off, taps, grid, len); break;
            case (SimdPath.Vector512, false): Taps<Simd512<TF>, Unfused>(buf, off, taps, grid, len); break;
            case (SimdPath.Vector256, true): Taps<Simd256<TF>, Fused>(buf, off, taps, grid, len); break;
            case (SimdPath.Vector256, false): Taps<Simd256<TF>, Unfused>(buf, off, taps, grid, len); break;
            case (_, true): Taps<SimdPortable<TF>, Fused>(buf, off, taps, grid, len); break;
            default: Taps<SimdPortable<TF>, Unfused>(buf, off, taps, grid, len); break;
        }
    }

    /// <summary>How a term joins the running sum.</summary>
    private interface IAccumulate
    {
        static abstract TV Step<TV>(TV w, TV x, TV acc) where TV : unmanaged, ISimd<TV, TF>;
    }

    /// <summary>acc = fma(w, x, acc): one rounding per term (conv.7, conv.9, conv.14).</summary>
    private readonly struct Fused : IAccumulate
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Step<TV>(TV w, TV x, TV acc) where TV : unmanaged, ISimd<TV, TF> => TV.FusedMultiplyAdd(w, x, acc);
    }

    /// <summary>acc = acc + round(w·x): col2im's order (conv.9–conv.10) with one output channel per group.</summary>
    private readonly struct Unfused : IAccumulate
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Step<TV>(TV w, TV x, TV acc) where TV : unmanaged, ISimd<TV, TF> => TV.Add(acc, TV.Multiply(w, x));
    }

    /// <summary>
    /// grid[pos] = Σ_t taps[t]·src[off[t] + pos] for pos &lt; len (a multiple of <see cref="Block"/>), each element
    /// one chain over t increasing from +0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Taps<TV, TAcc>(TF[] src, int[] off, ReadOnlySpan<TF> taps, TF[] grid, int len)
        where TV : unmanaged, ISimd<TV, TF> where TAcc : IAccumulate
    {
        int cnt = TV.Count, k = off.Length;
        if (len > grid.Length || len % (Unroll * cnt) != 0) throw new InvalidOperationException("depthwise internal error: grid size.");
        foreach (int o in off)
            if ((uint)o > (uint)(src.Length - len)) throw new InvalidOperationException("depthwise internal error: read out of range.");
        ref TF s0 = ref MemoryMarshal.GetArrayDataReference(src);
        ref TF g0 = ref MemoryMarshal.GetArrayDataReference(grid);
        ref int o0 = ref MemoryMarshal.GetArrayDataReference(off);
        ref TF w0 = ref MemoryMarshal.GetReference(taps);
        nuint c1 = (nuint)cnt, c2 = 2 * c1, c3 = 3 * c1;
        for (int pos = 0; pos < len; pos += Unroll * cnt)
        {
            TV a0 = TV.Zero, a1 = TV.Zero, a2 = TV.Zero, a3 = TV.Zero;
            for (int t = 0; t < k; t++)
            {
                var wv = TV.Splat(Unsafe.Add(ref w0, t));
                ref TF s = ref Unsafe.Add(ref s0, Unsafe.Add(ref o0, t) + pos);
                a0 = TAcc.Step(wv, TV.Load(ref s, 0), a0);
                a1 = TAcc.Step(wv, TV.Load(ref s, c1), a1);
                a2 = TAcc.Step(wv, TV.Load(ref s, c2), a2);
                a3 = TAcc.Step(wv, TV.Load(ref s, c3), a3);
            }
            ref TF d = ref Unsafe.Add(ref g0, pos);
            TV.Store(a0, ref d, 0);
            TV.Store(a1, ref d, c1);
            TV.Store(a2, ref d, c2);
            TV.Store(a3, ref d, c3);
        }
    }

    /// <summary>Writes the valid part of the grid (row stride <paramref name="wq"/>) into the plane, + bias after the sum.</summary>
    private static void Write(TF[] grid, int wq, Scatter s, Span<TF> plane, TF? bias)
    {
        int vc = Vector<TF>.Count;
        if (s.ColStride == 1 && s.RowStride == s.Cols && Vector.IsHardwareAccelerated && s.Cols >= vc && s.Rows > 0
            && (long)(s.Rows - 1) * wq + (s.Cols + vc - 1) / vc * vc <= grid.Length)
        {
            // Consecutive rows (the whole output plane): each row in whole vectors, the last one running into the next
            // row's first elements, which that row then overwrites (rows in increasing order); the plane's last row ends
            // with one vector ending at its end. One call for the plane instead of one per row.
            ref TF g0 = ref MemoryMarshal.GetArrayDataReference(grid);
            ref TF d0 = ref Unsafe.Add(ref MemoryMarshal.GetReference(plane), s.Base);
            var vb = new Vector<TF>(bias ?? TF.Zero);
            bool add = bias is not null;
            int cols = s.Cols;
            for (int u = 0; u < s.Rows; u++)
            {
                ref TF gr = ref Unsafe.Add(ref g0, u * wq);
                ref TF dr = ref Unsafe.Add(ref d0, u * cols);
                int end = u + 1 < s.Rows ? cols : cols - vc;
                int v = 0;
                for (; v < end; v += vc)
                {
                    var x = Vector.LoadUnsafe(ref gr, (nuint)v);
                    (add ? x + vb : x).StoreUnsafe(ref dr, (nuint)v);
                }
                if (u + 1 == s.Rows)
                {
                    var x = Vector.LoadUnsafe(ref gr, (nuint)(cols - vc));
                    (add ? x + vb : x).StoreUnsafe(ref dr, (nuint)(cols - vc));
                }
            }
            return;
        }
        for (int u = 0; u < s.Rows; u++)
        {
            var row = grid.AsSpan(u * wq, s.Cols);
            int at = s.Base + u * s.RowStride;
            if (s.ColStride == 1)
            {
                var d = plane.Slice(at, s.Cols);
                if (bias is { } b) System.Numerics.Tensors.TensorPrimitives.Add(row, b, d);
                else row.CopyTo(d);
            }
            else
            {
                if (bias is not null) throw new InvalidOperationException("depthwise internal error: strided output with bias.");
                Strided.Scatter(row, plane, at, s.ColStride);
            }
        }
    }

    // ---------------------------------------------------------------- input gradient, Eqs. (conv.9), (conv.10), (conv.14)

    /// <summary>dx from dy for a depthwise geometry (every element of dx is written).</summary>
    public static void BackwardInput(DenseTensor<TF> dy, DenseTensor<TF> weight, Conv2dGeometry g, DenseTensor<TF> dx)
    {
        int n = dy.Dim(0), c = g.InChannels, ho = dy.Dim(2), wo = dy.Dim(3), h = dx.Dim(2), w = dx.Dim(3);
        int kh = g.Kernel.H, kw = g.Kernel.W, k = kh * kw, dh = g.Dilation.H, dwl = g.Dilation.W;
        int padH = dh * (kh - 1) - g.Padding.H, padW = dwl * (kw - 1) - g.Padding.W;
        if (g.Stride == (1, 1) && padH >= 0 && padW >= 0)
        {
            // Eq. (conv.9): the forward chain of the flipped kernel over dy padded by d(k − 1) − p.
            var ph = Phases.Of(ho, wo, (1, 1), (padH, padW));
            var (off, widx) = Taps(k);
            for (int t = 0; t < k; t++)
            {
                off[t] = ph.TapOffset(t / kw * dh, t % kw * dwl);
                widx[t] = k - 1 - t;
            }
            Correlate(dy.Data, ho * wo, ph, off, widx, weight.Data, null, fused: true, c, n * c, dx.Data, h * w, h,
                new Scatter(h, w, 0, w, 1), clear: false);
            return;
        }
        // The dense kernel's choice for I/G = 1: col2im's order unless the phase kernel (conv.14) is forced.
        bool fused = ConvDispatch.DepthwisePhasedInputGradient;
        BackwardInputPhased(dy.Data, n, c, ho, wo, weight.Data, g, dx.Data, h, w, fused);
    }

    /// <summary>
    /// Any stride: the rows h of x with (h + ph) mod sh = ρ receive only the taps p with p·dh ≡ ρ (mod sh), from dy
    /// row u − m_p (columns alike), so each phase (ρ, σ) is a stride-1 correlation of the zero-padded dy with the
    /// phase's taps in increasing (p, q) order, scattered with strides (sh, sw); elements no tap reaches are 0.
    /// </summary>
    private static void BackwardInputPhased(TF[] dyData, int n, int c, int ho, int wo, TF[] wData, Conv2dGeometry g,
        TF[] dxData, int h, int w, bool fused)
    {
        int sh = g.Stride.H, sw = g.Stride.W, ph = g.Padding.H, pw = g.Padding.W, dh = g.Dilation.H, dwl = g.Dilation.W;
        int kh = g.Kernel.H, kw = g.Kernel.W, k = kh * kw;
        int top = (kh - 1) * dh / sh, left = (kw - 1) * dwl / sw;
        int rowsNeeded = ho, colsNeeded = wo;
        for (int rho = 0; rho < sh; rho++) rowsNeeded = Math.Max(rowsNeeded, FloorDiv(h + ph - rho + sh - 1, sh));
        for (int sig = 0; sig < sw; sig++) colsNeeded = Math.Max(colsNeeded, FloorDiv(w + pw - sig + sw - 1, sw));
        int hd = top + rowsNeeded, wd = Math.Max(left + colsNeeded, 1);
        var key = (g, h, w, ho, wo);
        if (t_phased is not { } cached || cached.Key != key) t_phased = cached = (key, PhaseTables(g, h, w, top, left, wd, hd));
        var (phases, need, maxGrid) = cached.Tables;
        var path = Conv2dTuning.Path;
        Compute.For(n * c, new PhasedInputGrad
        {
            Phases = phases, DyData = dyData, WData = wData, DxData = dxData, Path = path, Fused = fused,
            C = c, K = k, Ho = ho, Wo = wo, H = h, W = w, Top = top, Left = left, Wd = wd, Need = need, MaxGrid = maxGrid,
        });
    }

    [ThreadStatic]
    private static ((Conv2dGeometry, int, int, int, int) Key, ((int[] Off, int[] Widx, Scatter Scatter, int GridLen)[] Phases, int Need, int MaxGrid) Tables)? t_phased;

    /// <summary>The input gradient's phases (ρ, σ): their taps, scatter and grid length; the buffer and grid sizes.</summary>
    private static ((int[] Off, int[] Widx, Scatter Scatter, int GridLen)[] Phases, int Need, int MaxGrid) PhaseTables(
        Conv2dGeometry g, int h, int w, int top, int left, int wd, int hd)
    {
        int sh = g.Stride.H, sw = g.Stride.W, ph = g.Padding.H, pw = g.Padding.W, dh = g.Dilation.H, dwl = g.Dilation.W;
        int kh = g.Kernel.H, kw = g.Kernel.W;
        var phases = new List<(int[] Off, int[] Widx, Scatter Scatter, int GridLen)>();
        int need = hd * wd;
        for (int rho = 0; rho < sh; rho++)
        for (int sig = 0; sig < sw; sig++)
        {
            int u0 = FloorDiv(ph - rho + sh - 1, sh), u1 = FloorDiv(h + ph - rho + sh - 1, sh);
            int v0 = FloorDiv(pw - sig + sw - 1, sw), v1 = FloorDiv(w + pw - sig + sw - 1, sw);
            int hu = u1 - u0, hv = v1 - v0;
            if (hu <= 0 || hv <= 0) continue;
            var off = new List<int>();
            var widx = new List<int>();
            for (int p = 0; p < kh; p++)
            {
                if (p * dh % sh != rho) continue;
                int mp = (p * dh - rho) / sh;
                for (int q = 0; q < kw; q++)
                {
                    if (q * dwl % sw != sig) continue;
                    int nq = (q * dwl - sig) / sw;
                    off.Add((top + u0 - mp) * wd + (left + v0 - nq));
                    widx.Add(p * kw + q);
                }
            }
            if (off.Count == 0) continue; // no tap reaches these positions: they stay 0
            int gridLen = Ceil(hu * wd, Block) * Block;
            need = Math.Max(need, off.Max() + gridLen);
            phases.Add((off.ToArray(), widx.ToArray(), new Scatter(hu, hv, (sh * u0 + rho - ph) * w + (sw * v0 + sig - pw), sh * w, sw), gridLen));
        }
        return (phases.ToArray(), need, phases.Count == 0 ? 0 : phases.Max(p => p.GridLen));
    }

    /// <summary>One (image, channel) plane of the phased input gradient.</summary>
    private struct PhasedInputGrad : IForBody
    {
        public (int[] Off, int[] Widx, Scatter Scatter, int GridLen)[] Phases;
        public TF[] DyData, WData, DxData;
        public SimdPath Path;
        public bool Fused;
        public int C, K, Ho, Wo, H, W, Top, Left, Wd, Need, MaxGrid;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int pl)
        {
            var phases = Phases;
            TF[] dyData = DyData, wData = WData, dxData = DxData;
            var path = Path;
            bool fused = Fused;
            int c = C, k = K, ho = Ho, wo = Wo, h = H, w = W, top = Top, left = Left, wd = Wd, need = Need, maxGrid = MaxGrid;
            int ch = pl % c;
            var buf = Grow(ref t_src, need);
            var d = buf.AsSpan(0, need);
            d.Clear();
            for (int i = 0; i < ho; i++) dyData.AsSpan((pl * ho + i) * wo, wo).CopyTo(d.Slice((top + i) * wd + left, wo));
            var plane = dxData.AsSpan(pl * h * w, h * w);
            plane.Clear();
            var grid = Grow(ref t_grid, maxGrid);
            Span<TF> taps = stackalloc TF[k];
            foreach (var (off, widx, scatter, gridLen) in phases)
            {
                for (int t = 0; t < off.Length; t++) taps[t] = wData[ch * k + widx[t]];
                Run(path, fused, buf, off, taps[..off.Length], grid, gridLen);
                Write(grid, wd, scatter, plane, null);
            }
        }
    }

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    // ---------------------------------------------------------------- weight gradient, Eqs. (conv.11), (conv.12)

    /// <summary>dw from x and dy for a depthwise geometry.</summary>
    public static void BackwardWeight(DenseTensor<TF> x, DenseTensor<TF> dy, Conv2dGeometry g, DenseTensor<TF> dw)
    {
        int n = x.Dim(0), c = g.InChannels, h = x.Dim(2), w = x.Dim(3), ho = dy.Dim(2), wo = dy.Dim(3);
        int kw = g.Kernel.W, k = g.Kernel.H * kw;
        var ph = Phases.Of(h, w, g.Stride, g.Padding);
        var off = Taps(k).Off;
        for (int t = 0; t < k; t++) off[t] = ph.TapOffset(t / kw * g.Dilation.H, t % kw * g.Dilation.W);
        int grid = ho * ph.Wq;
        // The dense kernel's choice (Conv2dFast.BackwardWeight): lane sums on large grids, position chains on small.
        bool direct = ConvDispatch.DirectWeightGradient(grid);
        int lanes = Lanes;
        int gridPad = Ceil(grid, lanes) * lanes;
        int rc = direct ? Conv2dTuning.WeightGradChunkDirect : Conv2dTuning.WeightGradChunk;
        int span = direct ? gridPad : ho * wo;
        int chunksPerImage = Ceil(span, rc);
        int need = Math.Max(ph.Total, off.Max() + gridPad + lanes);
        var path = Conv2dTuning.Path;
        var xData = x.Data;
        var dyData = dy.Data;
        var dwData = dw.Data;
        Compute.For(c, new DepthwiseWeightGrad { Ph = ph, Off = off, XData = xData, DyData = dyData, DwData = dwData, Path = path, Direct = direct, K = k, LanesN = lanes, Need = need, GridPad = gridPad, N = n, C = c, H = h, W = w, Ho = ho, Wo = wo, Rc = rc, SpanLen = span, ChunksPerImage = chunksPerImage });
    }

    /// <summary>
    /// Small grids (conv.12, "otherwise"): for each tap an FMA chain over the output positions pos0 ≤ pos &lt; pos1
    /// of one image in increasing order, x read through the padded grid (padding terms included as dy·0).
    /// </summary>
    private static void PositionChains(ReadOnlySpan<TF> dy, TF[] src, int[] off, int wq, int wo, int pos0, int pos1, Span<TF> part)
    {
        part.Clear();
        for (int pos = pos0; pos < pos1; pos++)
        {
            int i = pos / wo, j = pos - i * wo, at = i * wq + j;
            TF d = dy[pos];
            for (int t = 0; t < off.Length; t++) part[t] = TF.FusedMultiplyAdd(d, src[off[t] + at], part[t]);
        }
    }

    private static void LaneSums(SimdPath path, TF[] dy, TF[] src, int[] off, int pos0, int steps, Span<TF> lanes)
    {
        switch (path)
        {
            case SimdPath.Vector512: LaneSums<Simd512<TF>>(dy, src, off, pos0, steps, lanes); break;
            case SimdPath.Vector256: LaneSums<Simd256<TF>>(dy, src, off, pos0, steps, lanes); break;
            default: LaneSums<SimdPortable<TF>>(dy, src, off, pos0, steps, lanes); break;
        }
    }

    /// <summary>
    /// conv.11: lanes[t·L + l] = Σ_i dy[pos0 + i·L + l]·src[off[t] + pos0 + i·L + l] for i &lt; steps, one FMA chain per
    /// lane in increasing i (L = <see cref="Lanes"/>: the lane of an element is its position mod L on every path).
    /// Three taps share each load of dy.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LaneSums<TV>(TF[] dy, TF[] src, int[] off, int pos0, int steps, Span<TF> lanes)
        where TV : unmanaged, ISimd<TV, TF>
    {
        int cnt = TV.Count, l = Lanes, k = off.Length;
        if (pos0 + steps * l > dy.Length) throw new InvalidOperationException("depthwise internal error: dY read out of range.");
        foreach (int o in off)
            if (o + pos0 + steps * l > src.Length) throw new InvalidOperationException("depthwise internal error: x read out of range.");
        ref TF d0 = ref MemoryMarshal.GetArrayDataReference(dy);
        ref TF s0 = ref MemoryMarshal.GetArrayDataReference(src);
        ref TF out0 = ref MemoryMarshal.GetReference(lanes);
        for (int g = 0; g < l; g += cnt)
        for (int t0 = 0; t0 < k; t0 += 3)
        {
            int t1 = Math.Min(t0 + 1, k - 1), t2 = Math.Min(t0 + 2, k - 1);
            ref TF d = ref Unsafe.Add(ref d0, pos0 + g);
            ref TF x0 = ref Unsafe.Add(ref s0, off[t0] + pos0 + g);
            ref TF x1 = ref Unsafe.Add(ref s0, off[t1] + pos0 + g);
            ref TF x2 = ref Unsafe.Add(ref s0, off[t2] + pos0 + g);
            TV c0 = TV.Zero, c1 = TV.Zero, c2 = TV.Zero;
            for (int i = 0; i < steps; i++)
            {
                nuint e = (nuint)(i * l);
                var dv = TV.Load(ref d, e);
                c0 = TV.FusedMultiplyAdd(dv, TV.Load(ref x0, e), c0);
                c1 = TV.FusedMultiplyAdd(dv, TV.Load(ref x1, e), c1);
                c2 = TV.FusedMultiplyAdd(dv, TV.Load(ref x2, e), c2);
            }
            TV.Store(c0, ref out0, (nuint)(t0 * l + g));
            TV.Store(c1, ref out0, (nuint)(t1 * l + g));
            TV.Store(c2, ref out0, (nuint)(t2 * l + g));
        }
    }

    /// <summary>The fixed pairwise tree of conv.11: s_i += s_{i+L/2}, then L/4, …; returns s_0.</summary>
    private static TF Tree(Span<TF> s)
    {
        for (int width = s.Length / 2; width >= 1; width /= 2)
            for (int i = 0; i < width; i++) s[i] += s[i + width];
        return s[0];
    }

    /// <summary>A loop body as a struct (no closure: a warm call allocates nothing).</summary>
    private struct DepthwiseWeightGrad : IForBody
    {
        public Phases Ph;
        public int[] Off;
        public TF[] XData;
        public TF[] DyData;
        public TF[] DwData;
        public SimdPath Path;
        public bool Direct;
        public int K;
        public int LanesN;
        public int Need;
        public int GridPad;
        public int N;
        public int C;
        public int H;
        public int W;
        public int Ho;
        public int Wo;
        public int Rc;
        public int SpanLen;
        public int ChunksPerImage;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int ch)
        {
            var ph = Ph;
            var off = Off;
            TF[] xData = XData, dyData = DyData, dwData = DwData;
            var path = Path;
            bool direct = Direct;
            int k = K, lanes = LanesN, need = Need, gridPad = GridPad, n = N, c = C, h = H, w = W, ho = Ho, wo = Wo, rc = Rc, span = SpanLen, chunksPerImage = ChunksPerImage;
            Span<TF> total = stackalloc TF[k];
            Span<TF> part = stackalloc TF[k];
            Span<TF> lanesBuf = stackalloc TF[k * lanes];
            var buf = Grow(ref t_src, need);
            var dyg = Grow(ref t_dy, gridPad + lanes);
            for (int img = 0; img < n; img++)
            {
                int pl = img * c + ch;
                ph.Fill(xData.AsSpan(pl * h * w, h * w), buf);
                buf.AsSpan(ph.Total, need - ph.Total).Clear();
                var dySrc = dyData.AsSpan(pl * ho * wo, ho * wo);
                if (direct)
                {
                    // dY on the grid Ho × Wq, zero at the junk columns and past the grid.
                    dyg.AsSpan(0, gridPad + lanes).Clear();
                    for (int i = 0; i < ho; i++) dySrc.Slice(i * wo, wo).CopyTo(dyg.AsSpan(i * ph.Wq, wo));
                }
                for (int chunk = 0; chunk < chunksPerImage; chunk++)
                {
                    int pos0 = chunk * rc, pos1 = Math.Min(span, pos0 + rc);
                    if (direct)
                    {
                        LaneSums(path, dyg, buf, off, pos0, (pos1 - pos0) / lanes, lanesBuf);
                        for (int t = 0; t < k; t++) part[t] = Tree(lanesBuf.Slice(t * lanes, lanes));
                    }
                    else
                    {
                        PositionChains(dySrc, buf, off, ph.Wq, wo, pos0, pos1, part);
                    }
                    // Eq. (conv.12): chunk totals in (image, chunk) order, the first one taken as it is.
                    if (img == 0 && chunk == 0) part.CopyTo(total);
                    else for (int t = 0; t < k; t++) total[t] += part[t];
                }
            }
            total.CopyTo(dwData.AsSpan(ch * k, k));
        }
    }
}
