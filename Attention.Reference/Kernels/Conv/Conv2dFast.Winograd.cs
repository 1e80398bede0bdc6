using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// Winograd F(2×2, 3×3) for 3×3 stride-1 padding-1 convolutions (inference plans only; the oracle never uses it),
/// Eq. (conv.W1) of docs/derivations/conv2d.md (Lavin &amp; Gray 2016): each 2×2 output tile is
/// Y = Aᵀ [ Σ_c U_c ⊙ V_c ] A with U = G g Gᵀ (the weights, computed in float64 from the float32 weights and rounded
/// once) and V = Bᵀ d B (the 4×4 input patch d at rows 2i − 1 …, columns 2j − 1 …, zero outside the image):
/// <code>
///      ⎡1  0 −1  0⎤        ⎡1    0   0 ⎤        ⎡1  1  1  0⎤
/// Bᵀ = ⎢0  1  1  0⎥    G = ⎢½    ½   ½ ⎥   Aᵀ = ⎣0  1 −1 −1⎦
///      ⎢0 −1  1  0⎥        ⎢½   −½   ½ ⎥
///      ⎣0  1  0 −1⎦        ⎣0    0   1 ⎦
/// </code>
/// 16 products per tile and channel pair instead of 36. Fixed order, every path and thread count: V rows first
/// (R = Bᵀd), then columns (V = R B), each entry one subtraction or addition of two values; for each of the 16 points
/// ξ = 4a + b and each tile the channel sum is one FMA chain over c increasing from +0 (the row kernel's micro-tile);
/// the output rows first (P = Aᵀ M, left to right), then columns (Y = P A, left to right), then + bias, then the
/// epilogue. Nothing mixes lanes, so the bits are the same on Vector512, Vector256 and portable paths and for any thread
/// count; they differ from the direct kernel's by the transforms' roundings (docs/inference.md quotes the error).
/// </summary>
internal static partial class Conv2dFast<TF>
{
    /// <summary>Tiles (of 2×2 outputs) per Winograd work unit, about: whole tile rows, so each channel's outputs of a unit are consecutive.</summary>
    private const int WinoUnitTiles = 56;

    [ThreadStatic] private static TF[]? t_winoV;   // worker: the band's V [ξ][c][tile]
    [ThreadStatic] private static TF[]? t_winoEo;  // worker: two channels' padded rows split in even and odd columns
    [ThreadStatic] private static TF[]? t_winoM;   // worker: M [block][ξ][tile][lanes] of up to 4 channel blocks
    [ThreadStatic] private static TF[]? t_winoY;   // worker: the unit's outputs [position][lanes]
    [ThreadStatic] private static TF[]? t_winoBias; // worker: one channel block's bias

    /// <summary>
    /// U = G g Gᵀ for every (output channel o, input channel c), in float64 from the weights and rounded once, packed for
    /// the row micro-kernel as [ξ][channel block][c][lanes] (channels past O zero).
    /// </summary>
    internal static TF[] WinogradWeights(TF[] w, int outChannels, int inChannels, int lanes)
    {
        int oBlocks = Ceil(outChannels, lanes);
        long length = 16L * oBlocks * inChannels * lanes;
        if (length > Array.MaxLength) throw new InvalidOperationException($"Winograd weights of {length} elements are too large.");
        var u = new TF[length];
        Span<double> gg = stackalloc double[12];
        for (int o = 0; o < outChannels; o++)
            for (int c = 0; c < inChannels; c++)
            {
                int src = (o * inChannels + c) * 9;
                for (int col = 0; col < 3; col++)
                {
                    double g0 = double.CreateTruncating(w[src + col]), g1 = double.CreateTruncating(w[src + 3 + col]);
                    double g2 = double.CreateTruncating(w[src + 6 + col]);
                    gg[col] = g0;
                    gg[3 + col] = (g0 + g1 + g2) / 2;
                    gg[6 + col] = (g0 - g1 + g2) / 2;
                    gg[9 + col] = g2;
                }
                for (int a = 0; a < 4; a++)
                {
                    double r0 = gg[3 * a], r1 = gg[3 * a + 1], r2 = gg[3 * a + 2];
                    Span<double> ub = [r0, (r0 + r1 + r2) / 2, (r0 - r1 + r2) / 2, r2];
                    for (int b = 0; b < 4; b++)
                        u[(((long)(4 * a + b) * oBlocks + o / lanes) * inChannels + c) * lanes + o % lanes] = TF.CreateTruncating(ub[b]);
                }
            }
        return u;
    }

    /// <summary>
    /// y = conv(x, w) + bias, then the epilogue, by Winograd F(2×2, 3×3); <paramref name="pack"/> keeps U between calls
    /// (computed on first use: only for weights that never change). <paramref name="g"/> must satisfy
    /// <see cref="ConvDispatch.WinogradComputes"/>.
    /// </summary>
    internal static void ForwardWinograd(DenseTensor<TF> x, DenseTensor<TF> weight, DenseTensor<TF>? bias, Conv2dGeometry g,
        DenseTensor<TF> y, IConvEpilogue<TF>? epilogue, ConvWeightPack pack)
    {
        if (!ConvDispatch.WinogradComputes(g)) throw new ArgumentException($"Winograd F(2x2,3x3) cannot compute {g}.", nameof(g));
        var path = SimdWidth.Path;
        ConvDispatch.Report("forward", "winograd", path, g, x.Dim(0), x.Dim(2), x.Dim(3));
        int lanes = Nr(path), n = x.Dim(0), c = g.InChannels, o = g.OutChannels, h = x.Dim(2), w = x.Dim(3);
        int ho = y.Dim(2), wo = y.Dim(3);
        if (ho != h || wo != w) throw new ArgumentException("Winograd: output size must equal input size (3x3, padding 1).");
        if (pack.Data is not TF[] u || pack.Lanes != lanes)
        {
            u = WinogradWeights(weight.Data, o, c, lanes);
            (pack.Data, pack.Lanes) = (u, lanes);
        }
        int th = Ceil(h, 2), tw = Ceil(w, 2), oBlocks = Ceil(o, lanes);
        // Units: (image, band of whole tile rows, group of channel blocks), each transforming its band's input into V
        // (kept in cache) and then running its channel blocks: bands of about 56 tiles (U is read once per unit and
        // reused over the band; docs/derivations/conv2d.md, "Algorithms and their rules"), at least two per image;
        // channel blocks split where that leaves fewer than 4 units. The split changes no bits.
        var split = SimdWidth.Choices.WinogradSplit;
        int bandRows = split?.BandRows ?? Math.Clamp(WinoUnitTiles / tw, 1, Math.Max(1, Ceil(th, 2)));
        int bands = Ceil(th, bandRows);
        int oGroups = split is { } forced ? Math.Min(forced.ChannelGroups, oBlocks) : 1;
        while (split is null && (long)n * bands * oGroups < 4 && oGroups < oBlocks) oGroups++;
        Compute.For(n * bands * oGroups, new WinoUnit
        {
            X = x.Data, U = u, Y = y.Data, Bias = bias?.Data, Epilogue = epilogue, Path = path, C = c, O = o, H = h, W = w,
            OBlocks = oBlocks, OGroups = oGroups, Bands = bands, BandRows = bandRows, Th = th, Tw = tw, Lanes = lanes,
        });
    }

    /// <summary>Channel blocks whose products one pass over a band's V computes (their M kept in L2: 4 × 114 KB at 56 tiles).</summary>
    private const int WinoBlocksPerPass = 4;

    /// <summary>
    /// V = Bᵀ d B for the tiles of tile rows i0 … i1 − 1 of one image, every input channel, written to
    /// v[ξ·xiStride + c·tp + t] (row stride <paramref name="tp"/>, at least the band's tiles + 16; plane stride
    /// <paramref name="xiStride"/> ≥ c·tp).
    /// </summary>
    private static void WinoInputBand(TF[] x, int img, int c, int h, int w, int i0, int i1, int tw, TF[] v, int tp, long xiStride,
        SimdPath path)
    {
        int rows = 2 * (i1 - i0) + 2, nt = (i1 - i0) * tw;
        // Each padded row split by column parity, rows of len values (tw + 1 used, the rest zero: vector loads past
        // the last tile read zeros).
        int len = Ceil(tw + 1 + 16, 16) * 16;
        // Two copies of the split rows: channel ch + 1 is split while channel ch is transformed, so the transform's loads
        // do not wait for the split's stores (unaligned loads overlapping recent stores).
        int half = 2 * rows * len;
        var eo = Grow(ref t_winoEo, 2L * half);
        ref TF e0 = ref MemoryMarshal.GetArrayDataReference(eo);
        if (16 * xiStride > v.Length || xiStride < (long)c * tp || nt + 16 > tp) throw new InvalidOperationException("Winograd internal error: V too small.");
        ref TF v0 = ref MemoryMarshal.GetArrayDataReference(v);
        // Tiles per vector step: the widest register not much wider than the tile row (its lanes past tw are junk
        // written into the next tile row, overwritten by it, or into the slack after the band's last tile).
        var width = path == SimdPath.Vector512 && tw > Simd256<TF>.Count ? SimdPath.Vector512
            : path != SimdPath.Portable && SimdWidth.Uses256(path) ? SimdPath.Vector256 : SimdPath.Portable;
        // Rows outside the image, even[0] (input column −1) and the columns past the row stay zero for every channel:
        // cleared once here, then each channel writes only the image's columns.
        eo.AsSpan(0, 2 * half).Clear();
        SplitRows(x, img, c, 0, h, w, i0, rows, len, ref e0);
        for (int ch = 0; ch < c; ch++)
        {
            if (ch + 1 < c) SplitRows(x, img, c, ch + 1, h, w, i0, rows, len, ref Unsafe.Add(ref e0, (ch + 1) % 2 * half));
            ref TF split = ref Unsafe.Add(ref e0, ch % 2 * half);
            ref TF vc = ref Unsafe.Add(ref v0, (nint)((long)ch * tp));
            for (int i = 0; i < i1 - i0; i++)
            {
                ref TF rowsRef = ref Unsafe.Add(ref split, 2 * (2 * i) * len);
                ref TF dst = ref Unsafe.Add(ref vc, i * tw);
                switch (width)
                {
                    case SimdPath.Vector512: InputTiles<Simd512<TF>>(ref rowsRef, len, ref dst, (nuint)xiStride, tw); break;
                    case SimdPath.Vector256: InputTiles<Simd256<TF>>(ref rowsRef, len, ref dst, (nuint)xiStride, tw); break;
                    default: InputTiles<SimdPortable<TF>>(ref rowsRef, len, ref dst, (nuint)xiStride, tw); break;
                }
            }
            // The columns past the band's last tile (read by its last micro-tile, or written as junk lanes) keep whatever
            // they hold: each column of V reaches only its own column of M (one accumulator per tile), so they change
            // nothing but discarded tiles.
        }
    }

    /// <summary><paramref name="length"/> elements rounded up to a whole, odd number of 64-byte lines.</summary>
    private static long OddLines(long length)
    {
        int perLine = 64 / Unsafe.SizeOf<TF>();
        long lines = (length + perLine - 1) / perLine;
        return (lines % 2 == 0 ? lines + 1 : lines) * perLine;
    }

    /// <summary>
    /// Padded rows 2·i0 + r (input row 2·i0 + r − 1), r &lt; <paramref name="rows"/>, of channel <paramref name="ch"/>
    /// split by column parity into e: even[j] = padded column 2j (input column 2j − 1) at e[2r·len + j], odd[j] = padded
    /// column 2j + 1 (input column 2j) at e[(2r + 1)·len + j]; rows outside the image are left as they are (zero).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SplitRows(TF[] x, int img, int c, int ch, int h, int w, int i0, int rows, int len, ref TF e)
    {
        ref TF plane = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(x), (nint)((long)(img * c + ch) * h * w));
        for (int r = 0; r < rows; r++)
        {
            int xr = 2 * i0 + r - 1;
            if (xr < 0 || xr >= h) continue;
            Deinterleave(ref Unsafe.Add(ref plane, xr * w), w, ref Unsafe.Add(ref e, (2 * r + 1) * len), ref Unsafe.Add(ref e, 2 * r * len + 1));
        }
    }


    private static readonly Vector512<int> s_evenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> s_oddLanes = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);

    /// <summary>
    /// (Both parities in one pass over the row: two <see cref="Strided.Gather{T}"/> calls instead measured the Winograd
    /// layers 5–25 % slower.)
    /// evens[j] = src[2j] (2j &lt; w), odds[j] = src[2j + 1] (2j + 1 &lt; w): pure data movement, 32 values per step by two
    /// AVX-512 permutes where the row holds them, else one by one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Deinterleave(ref TF src, int w, ref TF evens, ref TF odds)
    {
        if (typeof(TF) == typeof(float) && SimdWidth.Avx512Forms && w >= 32 && w % 2 == 0)
        {
            var ie = s_evenLanes;
            var io = s_oddLanes;
            ref float s = ref Unsafe.As<TF, float>(ref src);
            ref float de = ref Unsafe.As<TF, float>(ref evens);
            ref float dodd = ref Unsafe.As<TF, float>(ref odds);
            for (int p = 0; ; p += 32)
            {
                if (p > w - 32) p = w - 32; // the last step overlaps the one before (the same values again)
                var lo = Vector512.LoadUnsafe(ref s, (nuint)p);
                var hi = Vector512.LoadUnsafe(ref s, (nuint)(p + 16));
                Avx512F.PermuteVar16x32x2(lo, ie, hi).StoreUnsafe(ref de, (nuint)(p / 2));
                Avx512F.PermuteVar16x32x2(lo, io, hi).StoreUnsafe(ref dodd, (nuint)(p / 2));
                if (p == w - 32) return;
            }
        }
        for (int j = 0; 2 * j < w; j++)
        {
            Unsafe.Add(ref evens, j) = Unsafe.Add(ref src, 2 * j);
            if (2 * j + 1 < w) Unsafe.Add(ref odds, j) = Unsafe.Add(ref src, 2 * j + 1);
        }
    }

    /// <summary>
    /// The 16 values of tiles j, j + 1, … of one tile row, TV.Count at a time; where tw ≥ Count the last step overlaps
    /// the one before (recomputing the same values), else one step whose lanes past tw are junk.
    /// <paramref name="e"/>: four padded rows, each as [even columns][odd columns] of <paramref name="len"/> values.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputTiles<TV>(ref TF e, int len, ref TF v, nuint xiStride, int tw) where TV : unmanaged, ISimd<TV, TF>
    {
        int count = TV.Count, last = Math.Max(0, tw - count);
        nuint l = (nuint)len;
        for (int j = 0; ; j += count)
        {
            if (j > last) j = last;
            nuint jj = (nuint)j;
            // Row k of the patch at columns 2j − 1 + {0, 1, 2, 3} = even[j], odd[j], even[j + 1], odd[j + 1].
            var d00 = TV.Load(ref e, jj); var d01 = TV.Load(ref e, l + jj); var d02 = TV.Load(ref e, jj + 1); var d03 = TV.Load(ref e, l + jj + 1);
            var d10 = TV.Load(ref e, 2 * l + jj); var d11 = TV.Load(ref e, 3 * l + jj);
            var d12 = TV.Load(ref e, 2 * l + jj + 1); var d13 = TV.Load(ref e, 3 * l + jj + 1);
            var d20 = TV.Load(ref e, 4 * l + jj); var d21 = TV.Load(ref e, 5 * l + jj);
            var d22 = TV.Load(ref e, 4 * l + jj + 1); var d23 = TV.Load(ref e, 5 * l + jj + 1);
            var d30 = TV.Load(ref e, 6 * l + jj); var d31 = TV.Load(ref e, 7 * l + jj);
            var d32 = TV.Load(ref e, 6 * l + jj + 1); var d33 = TV.Load(ref e, 7 * l + jj + 1);
            // R = Bᵀ d: R0 = d0 − d2, R1 = d1 + d2, R2 = d2 − d1, R3 = d1 − d3 (rows of the patch).
            InputColumns<TV>(TV.Subtract(d00, d20), TV.Subtract(d01, d21), TV.Subtract(d02, d22), TV.Subtract(d03, d23), ref v, 0, jj, xiStride);
            InputColumns<TV>(TV.Add(d10, d20), TV.Add(d11, d21), TV.Add(d12, d22), TV.Add(d13, d23), ref v, 4, jj, xiStride);
            InputColumns<TV>(TV.Subtract(d20, d10), TV.Subtract(d21, d11), TV.Subtract(d22, d12), TV.Subtract(d23, d13), ref v, 8, jj, xiStride);
            InputColumns<TV>(TV.Subtract(d10, d30), TV.Subtract(d11, d31), TV.Subtract(d12, d32), TV.Subtract(d13, d33), ref v, 12, jj, xiStride);
            if (j == last) return;
        }
    }

    /// <summary>V[a][·] = R[a] B: V0 = R0 − R2, V1 = R1 + R2, V2 = R2 − R1, V3 = R1 − R3 (columns), stored at ξ = xi0 … xi0 + 3.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InputColumns<TV>(TV r0, TV r1, TV r2, TV r3, ref TF v, int xi0, nuint j, nuint xiStride)
        where TV : unmanaged, ISimd<TV, TF>
    {
        TV.Store(TV.Subtract(r0, r2), ref v, (nuint)xi0 * xiStride + j);
        TV.Store(TV.Add(r1, r2), ref v, (nuint)(xi0 + 1) * xiStride + j);
        TV.Store(TV.Subtract(r2, r1), ref v, (nuint)(xi0 + 2) * xiStride + j);
        TV.Store(TV.Subtract(r1, r3), ref v, (nuint)(xi0 + 3) * xiStride + j);
    }

    /// <summary>
    /// One work unit: (image, band of whole tile rows, group of channel blocks of 2·lanes output channels): the band's
    /// V, then M[ξ] = U[ξ] V[ξ] by the row micro-kernel (point by point, each point's V reused over the channel blocks
    /// from L1), then per channel block Y = Aᵀ M A per tile and the copy-out
    /// with bias and epilogue.
    /// </summary>
    private struct WinoUnit : IForBody
    {
        public TF[] X, U, Y;
        public TF[]? Bias;
        public IConvEpilogue<TF>? Epilogue;
        public SimdPath Path;
        public int C, O, H, W, OBlocks, OGroups, Bands, BandRows, Th, Tw, Lanes;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int unit)
        {
            int og = unit % OGroups, rest = unit / OGroups, band = rest % Bands, img = rest / Bands;
            int lanes = Lanes, c = C, tw = Tw, wo = W, ho = H;
            int i0 = band * BandRows, i1 = Math.Min(Th, i0 + BandRows), nt = (i1 - i0) * tw, micro = Ceil(nt, RowTile);
            int tp = micro * RowTile + 16; // the row stride of V: the micro-tiles' columns and slack for junk lanes
            // One point's plane of V: c rows of tp, padded to an odd number of cache lines so that the 16 planes (the input
            // transform writes all 16 for each channel) fall in different L1 sets (at an even number of lines they
            // shared two sets and evicted each other: the stores took two thirds of the input transform's time).
            long xiStride = OddLines((long)c * tp);
            var v = Grow(ref t_winoV, 16 * xiStride);
            WinoInputBand(X, img, c, H, W, i0, i1, tw, v, tp, xiStride, Path);
            int mStride = micro * RowTile * lanes; // one ξ of M
            int perGroup = Ceil(OBlocks, OGroups), obStart = og * perGroup, obEnd = Math.Min(OBlocks, (og + 1) * perGroup);
            long mBlock = 16L * mStride; // one channel block's M
            // Channel blocks a few at a time, so that their M stays in L2 however wide the layer.
            var m = Grow(ref t_winoM, WinoBlocksPerPass * mBlock);
            int rowsOut = Math.Min(ho, 2 * i1) - 2 * i0, len = rowsOut * wo, plane = ho * wo;
            var ybuf = Grow(ref t_winoY, (long)len * lanes);
            ref TF y0 = ref MemoryMarshal.GetArrayDataReference(ybuf);
            int kcMax = c <= RowKc * 3 / 2 ? c : RowKc;
            for (int pass0 = obStart; pass0 < obEnd; pass0 += WinoBlocksPerPass)
            {
            int passEnd = Math.Min(obEnd, pass0 + WinoBlocksPerPass);
            // ξ outer, channel blocks inner: the band's V of one point stays in L1 across the channel blocks.
            for (int xi = 0; xi < 16; xi++)
            {
                ref TF b = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(v), (nint)(xi * xiStride));
                for (int ob = pass0; ob < passEnd; ob++)
                {
                    ref TF a = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(U), (nint)(((long)xi * OBlocks + ob) * c * lanes));
                    ref TF mx = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(m), (nint)((ob - pass0) * mBlock + xi * mStride));
                    for (int k0 = 0; k0 < c; k0 += kcMax)
                    {
                        int kc = Math.Min(kcMax, c - k0);
                        ref TF ak = ref Unsafe.Add(ref a, k0 * lanes);
                        // The point's rows of V are tp apart: the tile steps through them.
                        var step = new Stepped((nint)k0 * tp, tp);
                        for (int t = 0; t < micro; t++)
                            RowTiles(Path, ref ak, ref Unsafe.Add(ref b, t * RowTile), ref Unsafe.NullRef<TF>(), step,
                                ref Unsafe.Add(ref mx, t * RowTile * lanes), kc, k0 == 0);
                    }
                }
            }
            for (int ob = pass0; ob < passEnd; ob++)
            {
                ref TF m0 = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(m), (nint)((ob - pass0) * mBlock));
                // Output transform (+ bias) into [position][lanes], the band's output rows 2·i0 … consecutive as in the plane.
                int o0 = ob * lanes, count = Math.Min(lanes, O - o0);
                var bias = Grow(ref t_winoBias, lanes);
                bias.AsSpan(0, lanes).Clear();
                Bias?.AsSpan(o0, count).CopyTo(bias);
                ref TF bv = ref MemoryMarshal.GetArrayDataReference(bias);
                for (int t = 0; t < nt; t++)
                {
                    int ti = t / tw, tj = t - ti * tw, p00 = 2 * ti * wo + 2 * tj;
                    bool right = 2 * tj + 1 < wo, below = 2 * ti + 1 < rowsOut;
                    ref TF mt = ref Unsafe.Add(ref m0, t * lanes);
                    ref TF yt = ref Unsafe.Add(ref y0, p00 * lanes);
                    switch (Path)
                    {
                        case SimdPath.Vector512: OutputTile<Simd512<TF>>(ref mt, mStride, ref bv, Bias is not null, ref yt, wo * lanes, lanes, right, below); break;
                        case SimdPath.Vector256: OutputTile<Simd256<TF>>(ref mt, mStride, ref bv, Bias is not null, ref yt, wo * lanes, lanes, right, below); break;
                        default: OutputTile<SimdPortable<TF>>(ref mt, mStride, ref bv, Bias is not null, ref yt, wo * lanes, lanes, right, below); break;
                    }
                }
                CopyOutChannels(ybuf, lanes, count, len, Y, (img * O + o0) * plane + 2 * i0 * wo, plane, null, o0, Epilogue, Path);
            }
            }
        }
    }

    /// <summary>
    /// Y = Aᵀ M A for one tile, every lane a channel: P0 = M0 + M1 + M2, P1 = M1 − M2 − M3 over rows a (left to right),
    /// then the same over columns, then + bias where there is one; stores the 2×2 outputs at y (row stride
    /// <paramref name="yRow"/>), the right column and the lower row only where they are inside the plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void OutputTile<TV>(ref TF m, int xiStride, ref TF bias, bool hasBias, ref TF y, int yRow, int lanes, bool right,
        bool below)
        where TV : unmanaged, ISimd<TV, TF>
    {
        nuint s = (nuint)xiStride;
        for (int v = 0; v < lanes; v += TV.Count)
        {
            nuint q = (nuint)v;
            // P[r][b] for b = 0 … 3 (rows combined), then Y[r][0] = P0 + P1 + P2, Y[r][1] = P1 − P2 − P3.
            TV p00 = default, p01 = default, p02 = default, p03 = default, p10 = default, p11 = default, p12 = default, p13 = default;
            for (int b = 0; b < 4; b++)
            {
                var a0 = TV.Load(ref m, (nuint)b * s + q); var a1 = TV.Load(ref m, (nuint)(4 + b) * s + q);
                var a2 = TV.Load(ref m, (nuint)(8 + b) * s + q); var a3 = TV.Load(ref m, (nuint)(12 + b) * s + q);
                var top = TV.Add(TV.Add(a0, a1), a2);
                var bottom = TV.Subtract(TV.Subtract(a1, a2), a3);
                switch (b)
                {
                    case 0: p00 = top; p10 = bottom; break;
                    case 1: p01 = top; p11 = bottom; break;
                    case 2: p02 = top; p12 = bottom; break;
                    default: p03 = top; p13 = bottom; break;
                }
            }
            var y00 = TV.Add(TV.Add(p00, p01), p02);
            var y01 = TV.Subtract(TV.Subtract(p01, p02), p03);
            var y10 = TV.Add(TV.Add(p10, p11), p12);
            var y11 = TV.Subtract(TV.Subtract(p11, p12), p13);
            if (hasBias)
            {
                var b = TV.Load(ref bias, q);
                (y00, y01, y10, y11) = (TV.Add(y00, b), TV.Add(y01, b), TV.Add(y10, b), TV.Add(y11, b));
            }
            TV.Store(y00, ref y, q);
            if (right) TV.Store(y01, ref y, (nuint)lanes + q);
            if (below)
            {
                TV.Store(y10, ref y, (nuint)yRow + q);
                if (right) TV.Store(y11, ref y, (nuint)(yRow + lanes) + q);
            }
        }
    }
}
