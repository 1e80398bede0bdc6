using System.Numerics.Tensors;
using System.Runtime.Intrinsics.X86;
using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// The channels-in-lanes ("row") form of the direct forward, Eq. (conv.8): the register tile is RowTile = 7 consecutive
/// output positions of one output row × two vectors of output channels, A (the weights) packed per reduction chunk as
/// [kk][2·lanes] and broadcast B values read from the phase-split padded input. The grid kernel computes Ho × Wq grid
/// columns rounded up to whole micro-panels, so on small planes (7 × 7: 64 columns for 49 outputs) up to a quarter of its
/// products are discarded; this form computes only the Wo columns of each row, rounded up to 7 (ResNet and MobileNet
/// widths 112, 56, 28, 14, 7 are multiples of 7). Every output element is the same FMA chain over kk increasing from +0
/// as in the grid kernel, then + bias, then the epilogue: the two forms are bitwise equal (tests hold them so).
/// </summary>
internal static partial class Conv2dFast<TF>
{
    /// <summary>Output positions per register tile of the row kernel.</summary>
    internal const int RowTile = 7;

    /// <summary>Reduction indices per packed A chunk of the row kernel (2·lanes·RowKc elements: 16 KB in float32).</summary>
    private const int RowKc = 128;

    /// <summary>
    /// Register tiles (of 7 positions) per row-kernel work unit: 224 positions, a multiple of 16, so that the register
    /// transposes of the copy-out leave no scalar tail (with 28 tiles every unit had 4 positions × 32 channels left;
    /// the stem measured 2 % faster by the median of six paired runs, the 3×3 layers unchanged).
    /// </summary>
    internal const int RowTilesPerUnit = 32;

    [ThreadStatic] private static TF[]? t_rowA;    // caller: packed A [group][channel block][kk][2·lanes]
    [ThreadStatic] private static TF[]? t_rowAChunk; // worker: one reduction chunk of A packed by its unit [kk][2·lanes]
    [ThreadStatic] private static TF[]? t_rowC;    // worker: the unit's products [tile][7][2·lanes]
    [ThreadStatic] private static TF[]? t_rowOut;  // worker: one channel's positions of the unit

    /// <summary>The direct forward in the row form: A element (row r of group g, column kk) at a.Data[g·a.GroupStride + r·a.Lda + a.AOff[kk]].</summary>
    private static void ForwardRows(TF[] xData, int n, int h, int w, DirectA a, TF[]? bData, Conv2dGeometry g, TF[] yData, int ho, int wo,
        IConvEpilogue<TF>? epilogue, SimdPath path, ConvWeightPack? cache)
    {
        int lanes = Nr(path), og = g.OutPerGroup, k = g.ReductionLength, oBlocks = Ceil(og, lanes);
        long packedLength = (long)g.Groups * oBlocks * k * lanes;
        int tilesPerRow = Ceil(wo, RowTile), tiles = ho * tilesPerRow;
        int perUnit = Math.Min(tiles, RowTilesPerUnit), posBlocks = Ceil(tiles, perUnit);
        // Weights not kept and few units per channel block (ConvDispatch.RowsPackInUnit): each unit packs its block chunk by chunk into
        // L1 just before using it, instead of a packing pass over all the weights that the units then read back from
        // L2 or L3.
        bool packInUnit = cache is null && ConvDispatch.RowsPackInUnit(n, ho, wo);
        TF[]? apack = null;
        if (!packInUnit)
        {
            if (cache?.Data is TF[] cached && cache.Lanes == lanes && cached.Length == packedLength) apack = cached;
            else
            {
                apack = cache is null ? Grow(ref t_rowA, packedLength) : new TF[packedLength];
                Compute.For(g.Groups * oBlocks, new RowPack { A = a, Dst = apack, Og = og, K = k, Lanes = lanes, OBlocks = oBlocks });
                if (cache is not null) (cache.Data, cache.Lanes) = (apack, lanes);
            }
        }
        var xpad = PhaseInput(xData, n, g, h, w, RowTile, out int wq, out int plane, out bool banded);
        var off = PhaseOffsets(g, h, wq, plane);
        var unit = new RowUnit
        {
            X = xpad, APack = apack, A = a, ImageStride = g.InChannels * plane, GroupStride = g.InPerGroup * plane, Off = off,
            PositionMajor = banded,
            Bias = bData,
            Y = yData, Epilogue = epilogue, Path = path, Groups = g.Groups, Og = og, K = k, Lanes = lanes,
            OBlocks = oBlocks, PosBlocks = posBlocks, TilesPerUnit = perUnit, Tiles = tiles,
            TilesPerRow = tilesPerRow, Wq = wq, Ho = ho, Wo = wo, OutChannels = g.OutChannels,
        };
        // Bounds, checked once here and not in the micro-kernel: the last position any tile reads.
        int maxOff = Math.Max(0, TensorPrimitives.Max<int>(off.AsSpan(0, k)));
        long last = (long)(n - 1) * unit.ImageStride + (long)(g.Groups - 1) * unit.GroupStride + maxOff
            + (long)(ho - 1) * wq + tilesPerRow * RowTile - 1;
        if (last >= xpad.Length) throw new InvalidOperationException("conv2d internal error: row-kernel input too small.");
        Compute.For(n * g.Groups * unit.OBlocks * unit.PosBlocks, unit);
    }

    /// <summary>
    /// The position block, channel block and (image, group) of unit u: channel blocks outermost; or, where the input
    /// planes were written in bands of rows (few channels: the stem), position blocks outermost, so that each thread's
    /// share reads mostly the rows it wrote itself (the other way round, the lines one core wrote are fetched from it
    /// by the other) — the stem 6–7 % faster on 2 threads (paired medians). Elsewhere channel-major measured faster
    /// (3x3 @28: position-major 6.6 % slower).
    /// </summary>
    private static (int Pb, int Ob, int ImageGroup) UnitBlocks(int u, int posBlocks, int oBlocks, bool positionMajor) =>
        positionMajor
            ? (u / oBlocks % posBlocks, u % oBlocks, u / oBlocks / posBlocks)
            : (u % posBlocks, u / posBlocks % oBlocks, u / posBlocks / oBlocks);

    /// <summary>
    /// One work unit of <see cref="ForwardRows"/>: (image, group, 2·lanes output channels, up to 32 tiles of 7 positions).
    /// </summary>
    private struct RowUnit : IForBody
    {
        public TF[] X, Y;
        public TF[]? APack; // null: each unit packs its chunks of A
        public DirectA A;
        public TF[]? Bias;
        public int[] Off;
        public IConvEpilogue<TF>? Epilogue;
        public SimdPath Path;
        public bool PositionMajor;
        public int ImageStride, GroupStride, Groups, Og, K, Lanes, OBlocks, PosBlocks, TilesPerUnit, Tiles, TilesPerRow;
        public int Wq, Ho, Wo, OutChannels;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int u)
        {
            var (pb, ob, rest) = UnitBlocks(u, PosBlocks, OBlocks, PositionMajor);
            int grp = rest % Groups, img = rest / Groups;
            int lanes = Lanes, k = K, t0 = pb * TilesPerUnit, nt = Math.Min(TilesPerUnit, Tiles - t0), tilesPerRow = TilesPerRow;
            int o0 = ob * lanes, count = Math.Min(lanes, Og - o0), wq = Wq, wo = Wo;
            var cbuf = Grow(ref t_rowC, (long)nt * RowTile * lanes);
            ref TF xb = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(X), img * ImageStride + grp * GroupStride);
            ref int off0 = ref MemoryMarshal.GetArrayDataReference(Off);
            ref TF c0 = ref MemoryMarshal.GetArrayDataReference(cbuf);
            // Reductions up to 1.5·RowKc in one chunk (the stem's 147: a second chunk of 19 would reload and store every
            // accumulator for a handful of products); longer ones in RowKc chunks that keep their packed A in L1.
            int kcMax = k <= RowKc * 3 / 2 ? k : RowKc;
            var apack = APack;
            TF[]? chunk = apack is null ? Grow(ref t_rowAChunk, (long)kcMax * lanes) : null;
            ref TF ablock = ref apack is null ? ref MemoryMarshal.GetArrayDataReference(chunk!)
                : ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(apack), (grp * OBlocks + ob) * k * lanes);
            // Where the copy-out transposes straight into the output, the last chunk stores each 16 finished positions
            // as it goes: a few dozen stores that drain while the next tiles compute, instead of the unit's whole block
            // at the end (25 KB of stores to lines that the large outputs, like the stem's 3.2 MB, hold in L3).
            int first = t0 / tilesPerRow * wo + (t0 % tilesPerRow) * RowTile, plane = Ho * wo, oc0 = grp * Og + o0;
            int yFirst = (img * OutChannels + oc0) * plane + first, flushed = 0;
            bool interleave = wo % RowTile == 0 && Transposes(lanes, count, nt * RowTile, Y, yFirst, plane, Path);
            for (int k0 = 0; k0 < k; k0 += kcMax)
            {
                int kc = Math.Min(kcMax, k - k0);
                if (apack is null) PackRows(A, grp, o0, Og, lanes, k0, kc, chunk);
                ref TF a0 = ref apack is null ? ref ablock : ref Unsafe.Add(ref ablock, k0 * lanes);
                bool lastChunk = interleave && k0 + kc == k;
                var step = Stepped.Of(Off.AsSpan(k0, kc)); // a 1x1 kernel's rows are one plane apart
                for (int t = 0; t < nt; t++)
                {
                    if (lastChunk && t * RowTile - flushed >= 16)
                        flushed = TransposeOut(cbuf, flushed, t * RowTile, Y, yFirst, plane, Bias, oc0);
                    int tile = t0 + t, ur = tile / tilesPerRow, v0 = (tile - ur * tilesPerRow) * RowTile;
                    ref TF bp = ref Unsafe.Add(ref xb, ur * wq + v0);
                    ref TF cp = ref Unsafe.Add(ref c0, t * RowTile * lanes);
                    ref TF bq = ref Unsafe.NullRef<TF>();
                    if (Path == SimdPath.Vector512 && t + 1 < nt)
                    {
                        // Two tiles at once (28 accumulators): the weights are loaded once for 14 positions (the stem
                        // 2.4–6 % faster, paired medians of three runs; the 3×3 layers 0–4 %).
                        int ur1 = (tile + 1) / tilesPerRow, v1 = (tile + 1 - ur1 * tilesPerRow) * RowTile;
                        bq = ref Unsafe.Add(ref xb, ur1 * wq + v1);
                        t++;
                    }
                    if (step is { } stepped)
                        RowTiles(Path, ref a0, ref bp, ref bq, stepped, ref cp, kc, k0 == 0);
                    else RowTiles(Path, ref a0, ref bp, ref bq, new Table(ref Unsafe.Add(ref off0, k0)), ref cp, kc, k0 == 0);
                }
            }
            // Copy-out, channel by channel: transpose the unit's products into one row, then + bias and the epilogue
            // (vectorised over the row, junk positions of partial tiles included and discarded), then the valid positions.
            var row = Grow(ref t_rowOut, nt * RowTile).AsSpan(0, nt * RowTile);
            if (wo % RowTile == 0)
            {
                // No junk positions (every ResNet and MobileNet width is a multiple of 7): the unit's positions are
                // consecutive in each channel's plane, so the products are transposed straight into the output (most
                // of them already, with their bias, during the last chunk), then the epilogue runs there (the same
                // operations on the same values).
                CopyOutChannels(cbuf, lanes, count, nt * RowTile, Y, yFirst, plane, Bias, oc0, Epilogue, Path, flushed);
                return;
            }
            for (int i = 0; i < count; i++)
            {
                int oc = grp * Og + o0 + i;
                for (int p = 0; p < row.Length; p++) row[p] = cbuf[p * lanes + i];
                if (Bias is not null) TensorPrimitives.Add(row, Bias[oc], row);
                Epilogue?.Apply(row);
                int chanBase = (img * OutChannels + oc) * Ho * wo;
                for (int t = 0; t < nt; t++)
                {
                    int tile = t0 + t, ur = tile / tilesPerRow, v0 = (tile - ur * tilesPerRow) * RowTile;
                    int valid = Math.Min(RowTile, wo - v0);
                    row.Slice(t * RowTile, valid).CopyTo(Y.AsSpan(chanBase + ur * wo + v0, valid));
                }
            }
        }
    }

    /// <summary>
    /// The copy-out of the row and Winograd kernels: products c[p·lanes + i] (p &lt; len, i &lt; count) of channels oc0 + i
    /// go to y[yFirst + i·plane + p], then + bias[oc0 + i] and the epilogue run on each channel's len positions there.
    /// On Vector512 float, 16 positions × 16 channels are transposed in registers, the bias added as they are stored
    /// (the same bits); positions below <paramref name="done"/> were already stored so by <see cref="TransposeOut"/>.
    /// </summary>
    private static void CopyOutChannels(TF[] c, int lanes, int count, int len, TF[] y, int yFirst, int plane, TF[]? bias, int oc0,
        IConvEpilogue<TF>? epilogue, SimdPath path, int done = 0)
    {
        if ((long)len * lanes > c.Length || count > lanes) throw new InvalidOperationException("conv2d internal error: copy-out too long.");
        if (Transposes(lanes, count, len, y, yFirst, plane, path)) done = TransposeOut(c, done, len, y, yFirst, plane, bias, oc0);
        ref TF cb = ref MemoryMarshal.GetArrayDataReference(c);
        for (int i = 0; i < count; i++)
        {
            var seg = y.AsSpan(yFirst + i * plane, len);
            ref TF sp = ref Unsafe.Add(ref cb, i);
            for (int p = done; p < seg.Length; p++) seg[p] = Unsafe.Add(ref sp, p * lanes);
            if (bias is not null) TensorPrimitives.Add(seg[done..], bias[oc0 + i], seg[done..]);
            epilogue?.Apply(seg);
        }
    }

    /// <summary>Whether the copy-out of len positions transposes in registers (Vector512 float, 32 full lanes).</summary>
    private static bool Transposes(int lanes, int count, int len, TF[] y, int yFirst, int plane, SimdPath path) =>
        typeof(TF) == typeof(float) && path == SimdPath.Vector512 && SimdWidth.Avx512Forms && lanes == 32 && count == 32
        && yFirst >= 0 && (long)yFirst + 31L * plane + len <= y.Length;

    /// <summary>
    /// Positions [from, from + 16·m) of <see cref="CopyOutChannels"/> (m whole blocks of 16 up to <paramref name="to"/>),
    /// transposed into y with the bias; returns from + 16·m. The caller checked <see cref="Transposes"/>.
    /// </summary>
    private static int TransposeOut(TF[] c, int from, int to, TF[] y, int yFirst, int plane, TF[]? bias, int oc0)
    {
        if (from < 0 || (long)to * 32 > c.Length)
            throw new InvalidOperationException("conv2d internal error: copy-out too long.");
        bool add = bias is not null;
        if (add && (oc0 < 0 || oc0 + 32 > bias!.Length))
            throw new InvalidOperationException("conv2d internal error: bias too short.");
        ref float src = ref Unsafe.As<TF, float>(ref MemoryMarshal.GetArrayDataReference(c));
        ref float dst = ref Unsafe.As<TF, float>(ref y[yFirst]);
        // The bias is added as the transposed rows are stored (the same one rounding as a separate pass over them).
        ref float b0 = ref add ? ref Unsafe.As<TF, float>(ref bias![oc0]) : ref Unsafe.NullRef<float>();
        int done = from;
        for (; done + 16 <= to; done += 16)
        {
            Transpose16(ref Unsafe.Add(ref src, done * 32), 32, ref Unsafe.Add(ref dst, done), plane, add, ref b0);
            Transpose16(ref Unsafe.Add(ref src, done * 32 + 16), 32, ref Unsafe.Add(ref dst, 16 * plane + done), plane, add,
                ref add ? ref Unsafe.Add(ref b0, 16) : ref b0);
        }
        return done;
    }

    /// <summary>Packs the A rows of one (group, channel block) as [kk][lanes], rows past O/G zero.</summary>
    private struct RowPack : IForBody
    {
        public DirectA A;
        public TF[] Dst;
        public int Og, K, Lanes, OBlocks;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Invoke(int idx)
        {
            int k = K, lanes = Lanes;
            PackRows(A, idx / OBlocks, idx % OBlocks * lanes, Og, lanes, 0, k, Dst.AsSpan(idx * k * lanes, k * lanes));
        }
    }

    /// <summary>
    /// Columns [k0, k0 + kc) of the A rows o0 … o0 + lanes − 1 of group grp, as [kk − k0][lanes] in
    /// <paramref name="d"/> (rows past O/G zero): one channel block's weights, or one reduction chunk of them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRows(DirectA a, int grp, int o0, int og, int lanes, int k0, int kc, Span<TF> d)
    {
        int count = Math.Min(lanes, og - o0);
        d = d[..(kc * lanes)];
        if (count < lanes) d.Clear();
        var aData = a.Data;
        var aoff = a.AOff.AsSpan(k0, kc);
        int done = 0;
        if (typeof(TF) == typeof(float) && SimdWidth.Avx512Forms && lanes == 32 && count == 32 && kc >= 16 && IsIdentity(aoff, k0)
            && (long)grp * a.GroupStride + (long)(o0 + 31) * a.Lda + k0 + kc <= aData.Length)
        {
            // The weights in place ([o][kk], identity offsets): 16 channels × 16 reduction indices per register
            // transpose (data movement only).
            ref float src = ref Unsafe.As<TF, float>(ref aData[grp * a.GroupStride + o0 * a.Lda + k0]);
            ref float dst = ref Unsafe.As<TF, float>(ref MemoryMarshal.GetReference(d));
            for (; done + 16 <= kc; done += 16)
            {
                Transpose16(ref Unsafe.Add(ref src, done), a.Lda, ref Unsafe.Add(ref dst, done * 32), 32);
                Transpose16(ref Unsafe.Add(ref src, 16 * a.Lda + done), a.Lda, ref Unsafe.Add(ref dst, done * 32 + 16), 32);
            }
        }
        else if (typeof(TF) == typeof(float) && SimdWidth.Avx2Forms && lanes == 32 && count == 32
            && a.Lda > 0 && (long)grp * a.GroupStride + (long)(o0 + 31) * a.Lda + TensorPrimitives.Max(aoff) < aData.Length
            && TensorPrimitives.Min(aoff) >= 0)
        {
            // Other column offsets (the input gradient's flipped taps): the 32 rows' elements of one column by four
            // strided hardware gathers of 8 (data movement only; bounds checked above for every column).
            var rows = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * a.Lda;
            ref float dst = ref Unsafe.As<TF, float>(ref MemoryMarshal.GetReference(d));
            ref float rowBase = ref Unsafe.As<TF, float>(ref aData[grp * a.GroupStride + o0 * a.Lda]);
            int eight = 8 * a.Lda;
            unsafe
            {
                fixed (float* p = &rowBase)
                    for (int kk = 0; kk < kc; kk++)
                    {
                        float* col = p + aoff[kk];
                        Avx2.GatherVector256(col, rows, 4).StoreUnsafe(ref dst, (nuint)(kk * 32));
                        Avx2.GatherVector256(col + eight, rows, 4).StoreUnsafe(ref dst, (nuint)(kk * 32 + 8));
                        Avx2.GatherVector256(col + 2 * eight, rows, 4).StoreUnsafe(ref dst, (nuint)(kk * 32 + 16));
                        Avx2.GatherVector256(col + 3 * eight, rows, 4).StoreUnsafe(ref dst, (nuint)(kk * 32 + 24));
                    }
            }
            return;
        }
        // Blocked over kk so the destination lines being filled (64 of them, one per kk) stay in L1 while the
        // rows i are transposed into them (unblocked, every store of a 32-lane row missed: packing cost as much as
        // the 28×28 layer's products).
        for (int b0 = done; b0 < kc; b0 += 64)
        {
            int bEnd = Math.Min(kc, b0 + 64);
            for (int i = 0; i < count; i++)
            {
                var src = aData.AsSpan(grp * a.GroupStride + (o0 + i) * a.Lda);
                for (int kk = b0; kk < bEnd; kk++) d[kk * lanes + i] = src[aoff[kk]];
            }
        }
    }

    private static bool IsIdentity(ReadOnlySpan<int> offsets, int first = 0)
    {
        for (int i = 0; i < offsets.Length; i++) if (offsets[i] != first + i) return false;
        return true;
    }

    /// <summary>
    /// d[j·dStride + r] = s[r·sStride + j] for r, j &lt; 16: a 16 × 16 block transposed in registers (unpack 32- and 64-bit
    /// pairs, then two rounds of 128-bit block shuffles).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16(ref float s, nint sStride, ref float d, nint dStride) =>
        Transpose16(ref s, sStride, ref d, dStride, false, ref Unsafe.NullRef<float>());

    /// <summary>
    /// d[j·dStride + r] = s[r·sStride + j] for r, j &lt; 8, with <paramref name="rowAdd"/>[j] added to destination row j
    /// where <paramref name="add"/>: an 8 × 8 block transposed in AVX registers (unpack 32-bit pairs, shuffle 64-bit pairs,
    /// then 128-bit halves). The AVX2 machines' form of <see cref="Transpose16(ref float, nint, ref float, nint)"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8(ref float s, nint sStride, ref float d, nint dStride, bool add, ref float rowAdd)
    {
        var r0 = Vector256.LoadUnsafe(ref s); var r1 = Vector256.LoadUnsafe(ref s, (nuint)sStride);
        var r2 = Vector256.LoadUnsafe(ref s, (nuint)(2 * sStride)); var r3 = Vector256.LoadUnsafe(ref s, (nuint)(3 * sStride));
        var r4 = Vector256.LoadUnsafe(ref s, (nuint)(4 * sStride)); var r5 = Vector256.LoadUnsafe(ref s, (nuint)(5 * sStride));
        var r6 = Vector256.LoadUnsafe(ref s, (nuint)(6 * sStride)); var r7 = Vector256.LoadUnsafe(ref s, (nuint)(7 * sStride));
        Interleave8(r0, r1, r2, r3, r4, r5, r6, r7, out var u0, out var u1, out var u2, out var u3, out var u4, out var u5,
            out var u6, out var u7);
        Put(Avx.Permute2x128(u0, u4, 0x20), 0, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u1, u5, 0x20), 1, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u2, u6, 0x20), 2, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u3, u7, 0x20), 3, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u0, u4, 0x31), 4, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u1, u5, 0x31), 5, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u2, u6, 0x31), 6, ref d, dStride, add, ref rowAdd);
        Put(Avx.Permute2x128(u3, u7, 0x31), 7, ref d, dStride, add, ref rowAdd);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Put(Vector256<float> v, int j, ref float d, nint dStride, bool add, ref float rowAdd) =>
            (add ? v + Vector256.Create(Unsafe.Add(ref rowAdd, j)) : v).StoreUnsafe(ref d, (nuint)(j * dStride));
    }

    /// <summary>
    /// The first two rounds of an 8 × 8 AVX transpose of rows r0..r7 (unpack 32-bit pairs, shuffle 64-bit pairs): column j
    /// is then Permute2x128(u_j, u_{j+4}, 0x20) for j &lt; 4 and Permute2x128(u_{j−4}, u_j, 0x31) for j ≥ 4
    /// (<see cref="Transpose8"/> stores them, the plane reduction adds them).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Interleave8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7,
        out Vector256<float> u0, out Vector256<float> u1, out Vector256<float> u2, out Vector256<float> u3,
        out Vector256<float> u4, out Vector256<float> u5, out Vector256<float> u6, out Vector256<float> u7)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        u0 = Avx.Shuffle(t0, t2, 0x44); u1 = Avx.Shuffle(t0, t2, 0xEE);
        u2 = Avx.Shuffle(t1, t3, 0x44); u3 = Avx.Shuffle(t1, t3, 0xEE);
        u4 = Avx.Shuffle(t4, t6, 0x44); u5 = Avx.Shuffle(t4, t6, 0xEE);
        u6 = Avx.Shuffle(t5, t7, 0x44); u7 = Avx.Shuffle(t5, t7, 0xEE);
    }

    /// <summary>
    /// <see cref="Transpose16(ref float, nint, ref float, nint)"/>, with <paramref name="rowAdd"/>[j] added to destination
    /// row j where <paramref name="add"/> (one rounded sum per element: a convolution's bias, added in the copy-out).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16(ref float s, nint sStride, ref float d, nint dStride, bool add, ref float rowAdd)
    {
        var r0 = Vector512.LoadUnsafe(ref s); var r1 = Vector512.LoadUnsafe(ref s, (nuint)sStride);
        var r2 = Vector512.LoadUnsafe(ref s, (nuint)(2 * sStride)); var r3 = Vector512.LoadUnsafe(ref s, (nuint)(3 * sStride));
        var r4 = Vector512.LoadUnsafe(ref s, (nuint)(4 * sStride)); var r5 = Vector512.LoadUnsafe(ref s, (nuint)(5 * sStride));
        var r6 = Vector512.LoadUnsafe(ref s, (nuint)(6 * sStride)); var r7 = Vector512.LoadUnsafe(ref s, (nuint)(7 * sStride));
        var r8 = Vector512.LoadUnsafe(ref s, (nuint)(8 * sStride)); var r9 = Vector512.LoadUnsafe(ref s, (nuint)(9 * sStride));
        var r10 = Vector512.LoadUnsafe(ref s, (nuint)(10 * sStride)); var r11 = Vector512.LoadUnsafe(ref s, (nuint)(11 * sStride));
        var r12 = Vector512.LoadUnsafe(ref s, (nuint)(12 * sStride)); var r13 = Vector512.LoadUnsafe(ref s, (nuint)(13 * sStride));
        var r14 = Vector512.LoadUnsafe(ref s, (nuint)(14 * sStride)); var r15 = Vector512.LoadUnsafe(ref s, (nuint)(15 * sStride));
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        r0 = Lo(t0, t2); r1 = Hi(t0, t2); r2 = Lo(t1, t3); r3 = Hi(t1, t3);
        r4 = Lo(t4, t6); r5 = Hi(t4, t6); r6 = Lo(t5, t7); r7 = Hi(t5, t7);
        r8 = Lo(t8, t10); r9 = Hi(t8, t10); r10 = Lo(t9, t11); r11 = Hi(t9, t11);
        r12 = Lo(t12, t14); r13 = Hi(t12, t14); r14 = Lo(t13, t15); r15 = Hi(t13, t15);
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xdd); t5 = Avx512F.Shuffle4x128(r1, r5, 0xdd);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xdd); t7 = Avx512F.Shuffle4x128(r3, r7, 0xdd);
        t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t9 = Avx512F.Shuffle4x128(r9, r13, 0x88);
        t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t11 = Avx512F.Shuffle4x128(r11, r15, 0x88);
        t12 = Avx512F.Shuffle4x128(r8, r12, 0xdd); t13 = Avx512F.Shuffle4x128(r9, r13, 0xdd);
        t14 = Avx512F.Shuffle4x128(r10, r14, 0xdd); t15 = Avx512F.Shuffle4x128(r11, r15, 0xdd);
        Put(Avx512F.Shuffle4x128(t0, t8, 0x88), 0, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t1, t9, 0x88), 1, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t2, t10, 0x88), 2, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t3, t11, 0x88), 3, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t4, t12, 0x88), 4, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t5, t13, 0x88), 5, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t6, t14, 0x88), 6, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t7, t15, 0x88), 7, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t0, t8, 0xdd), 8, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t1, t9, 0xdd), 9, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t2, t10, 0xdd), 10, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t3, t11, 0xdd), 11, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t4, t12, 0xdd), 12, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t5, t13, 0xdd), 13, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t6, t14, 0xdd), 14, ref d, dStride, add, ref rowAdd);
        Put(Avx512F.Shuffle4x128(t7, t15, 0xdd), 15, ref d, dStride, add, ref rowAdd);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Put(Vector512<float> v, int j, ref float d, nint dStride, bool add, ref float rowAdd) =>
            (add ? v + Vector512.Create(Unsafe.Add(ref rowAdd, j)) : v).StoreUnsafe(ref d, (nuint)(j * dStride));
        static Vector512<float> Lo(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();
        static Vector512<float> Hi(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
    }

    /// <summary>
    /// One row tile (or two, <paramref name="b1"/> not null: Vector512's 14-position pair) on the vector path: the one
    /// place the row kernel's and Winograd's products pick a register tile.
    /// </summary>
    private static void RowTiles<TO>(SimdPath path, ref TF a, ref TF b0, ref TF b1, TO off, ref TF c, int kc, bool first)
        where TO : IOffsets, allows ref struct
    {
        if (!Unsafe.IsNullRef(ref b1)) MicroRows14<Simd512<TF>, TO>(ref a, ref b0, ref b1, off, ref c, kc, first);
        else if (path == SimdPath.Vector512) MicroRows<Simd512<TF>, TO>(ref a, ref b0, off, ref c, kc, first);
        else if (path == SimdPath.Vector256) MicroRows<Simd256<TF>, TO>(ref a, ref b0, off, ref c, kc, first);
        else MicroRows<SimdPortable<TF>, TO>(ref a, ref b0, off, ref c, kc, first);
    }

    /// <summary>
    /// The 7 × 2 register tile of the row kernel, written once for every vector width: 14 accumulators (position r,
    /// channel vector v), one FMA chain per element over kk, starting from +0 when <paramref name="first"/>;
    /// B broadcast from b[off[kk] + r], A two registers at a[kk·2·Count].
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroRows<TV, TO>(ref TF a, ref TF b, TO off, ref TF c, int kc, bool first)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        if (TV.SixteenRegisters)
        {
            // 16 vector registers (x64 without AVX-512): positions 0–3, then 4–6, each over all kk (the same chains).
            MicroRows4<TV, TO>(ref a, ref b, off, ref c, kc, first);
            MicroRows3<TV, TO>(ref a, ref Unsafe.Add(ref b, 4), off, ref Unsafe.Add(ref c, 8 * TV.Count), kc, first);
            return;
        }
        nuint l = (nuint)TV.Count, s = 2 * l;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = c60 = c61 = TV.Zero;
        }
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
            c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
            c40 = TV.Load(ref c, 4 * s); c41 = TV.Load(ref c, 4 * s + l);
            c50 = TV.Load(ref c, 5 * s); c51 = TV.Load(ref c, 5 * s + l);
            c60 = TV.Load(ref c, 6 * s); c61 = TV.Load(ref c, 6 * s + l);
        }
        ref TF ap = ref a;
        // Equally spaced rows of B advance by their step (Winograd's planes, 1x1 kernels); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        for (int kk = 0; kk < kc; kk++, bp = ref Unsafe.Add(ref bp, bs))
        {
            if (!TO.IsStepped) bp = ref Unsafe.Add(ref b, off.At(kk));
            var w0 = TV.Load(ref ap, 0);
            var w1 = TV.Load(ref ap, l);
            TV bv;
            bv = TV.Splat(bp); c00 = TV.FusedMultiplyAdd(bv, w0, c00); c01 = TV.FusedMultiplyAdd(bv, w1, c01);
            bv = TV.Splat(Unsafe.Add(ref bp, 1)); c10 = TV.FusedMultiplyAdd(bv, w0, c10); c11 = TV.FusedMultiplyAdd(bv, w1, c11);
            bv = TV.Splat(Unsafe.Add(ref bp, 2)); c20 = TV.FusedMultiplyAdd(bv, w0, c20); c21 = TV.FusedMultiplyAdd(bv, w1, c21);
            bv = TV.Splat(Unsafe.Add(ref bp, 3)); c30 = TV.FusedMultiplyAdd(bv, w0, c30); c31 = TV.FusedMultiplyAdd(bv, w1, c31);
            bv = TV.Splat(Unsafe.Add(ref bp, 4)); c40 = TV.FusedMultiplyAdd(bv, w0, c40); c41 = TV.FusedMultiplyAdd(bv, w1, c41);
            bv = TV.Splat(Unsafe.Add(ref bp, 5)); c50 = TV.FusedMultiplyAdd(bv, w0, c50); c51 = TV.FusedMultiplyAdd(bv, w1, c51);
            bv = TV.Splat(Unsafe.Add(ref bp, 6)); c60 = TV.FusedMultiplyAdd(bv, w0, c60); c61 = TV.FusedMultiplyAdd(bv, w1, c61);
            ap = ref Unsafe.Add(ref ap, s);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
        TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
        TV.Store(c40, ref c, 4 * s); TV.Store(c41, ref c, 4 * s + l);
        TV.Store(c50, ref c, 5 * s); TV.Store(c51, ref c, 5 * s + l);
        TV.Store(c60, ref c, 6 * s); TV.Store(c61, ref c, 6 * s + l);
    }

    /// <summary>
    /// Two tiles of <see cref="MicroRows{TV, TO}"/> at once (28 accumulators, 2 weight vectors and a broadcast: 31 of 32
    /// registers on Vector512): positions 0–6 broadcast from <paramref name="b0"/>, 7–13 from <paramref name="b1"/>;
    /// every element is the same FMA chain, so the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroRows14<TV, TO>(ref TF a, ref TF b0, ref TF b1, TO off, ref TF c, int kc, bool first)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        nuint l = (nuint)TV.Count, s = 2 * l;
        TV c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61;
        TV d00, d01, d10, d11, d20, d21, d30, d31, d40, d41, d50, d51, d60, d61;
        if (first)
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = c60 = c61 = TV.Zero;
            d00 = d01 = d10 = d11 = d20 = d21 = d30 = d31 = d40 = d41 = d50 = d51 = d60 = d61 = TV.Zero;
        }
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l); c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l); c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
            c40 = TV.Load(ref c, 4 * s); c41 = TV.Load(ref c, 4 * s + l); c50 = TV.Load(ref c, 5 * s); c51 = TV.Load(ref c, 5 * s + l);
            c60 = TV.Load(ref c, 6 * s); c61 = TV.Load(ref c, 6 * s + l);
            d00 = TV.Load(ref c, 7 * s); d01 = TV.Load(ref c, 7 * s + l); d10 = TV.Load(ref c, 8 * s); d11 = TV.Load(ref c, 8 * s + l);
            d20 = TV.Load(ref c, 9 * s); d21 = TV.Load(ref c, 9 * s + l); d30 = TV.Load(ref c, 10 * s); d31 = TV.Load(ref c, 10 * s + l);
            d40 = TV.Load(ref c, 11 * s); d41 = TV.Load(ref c, 11 * s + l); d50 = TV.Load(ref c, 12 * s);
            d51 = TV.Load(ref c, 12 * s + l); d60 = TV.Load(ref c, 13 * s); d61 = TV.Load(ref c, 13 * s + l);
        }
        ref TF ap = ref a;
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0, o0 = stepped ? off.At(0) : 0;
        ref TF bp = ref Unsafe.Add(ref b0, o0);
        ref TF bq = ref Unsafe.Add(ref b1, o0);
        for (int kk = 0; kk < kc; kk++, bp = ref Unsafe.Add(ref bp, bs), bq = ref Unsafe.Add(ref bq, bs))
        {
            if (!TO.IsStepped)
            {
                bp = ref Unsafe.Add(ref b0, off.At(kk));
                bq = ref Unsafe.Add(ref b1, off.At(kk));
            }
            var w0 = TV.Load(ref ap, 0);
            var w1 = TV.Load(ref ap, l);
            TV bv;
            bv = TV.Splat(bp); c00 = TV.FusedMultiplyAdd(bv, w0, c00); c01 = TV.FusedMultiplyAdd(bv, w1, c01);
            bv = TV.Splat(Unsafe.Add(ref bp, 1)); c10 = TV.FusedMultiplyAdd(bv, w0, c10); c11 = TV.FusedMultiplyAdd(bv, w1, c11);
            bv = TV.Splat(Unsafe.Add(ref bp, 2)); c20 = TV.FusedMultiplyAdd(bv, w0, c20); c21 = TV.FusedMultiplyAdd(bv, w1, c21);
            bv = TV.Splat(Unsafe.Add(ref bp, 3)); c30 = TV.FusedMultiplyAdd(bv, w0, c30); c31 = TV.FusedMultiplyAdd(bv, w1, c31);
            bv = TV.Splat(Unsafe.Add(ref bp, 4)); c40 = TV.FusedMultiplyAdd(bv, w0, c40); c41 = TV.FusedMultiplyAdd(bv, w1, c41);
            bv = TV.Splat(Unsafe.Add(ref bp, 5)); c50 = TV.FusedMultiplyAdd(bv, w0, c50); c51 = TV.FusedMultiplyAdd(bv, w1, c51);
            bv = TV.Splat(Unsafe.Add(ref bp, 6)); c60 = TV.FusedMultiplyAdd(bv, w0, c60); c61 = TV.FusedMultiplyAdd(bv, w1, c61);
            bv = TV.Splat(bq); d00 = TV.FusedMultiplyAdd(bv, w0, d00); d01 = TV.FusedMultiplyAdd(bv, w1, d01);
            bv = TV.Splat(Unsafe.Add(ref bq, 1)); d10 = TV.FusedMultiplyAdd(bv, w0, d10); d11 = TV.FusedMultiplyAdd(bv, w1, d11);
            bv = TV.Splat(Unsafe.Add(ref bq, 2)); d20 = TV.FusedMultiplyAdd(bv, w0, d20); d21 = TV.FusedMultiplyAdd(bv, w1, d21);
            bv = TV.Splat(Unsafe.Add(ref bq, 3)); d30 = TV.FusedMultiplyAdd(bv, w0, d30); d31 = TV.FusedMultiplyAdd(bv, w1, d31);
            bv = TV.Splat(Unsafe.Add(ref bq, 4)); d40 = TV.FusedMultiplyAdd(bv, w0, d40); d41 = TV.FusedMultiplyAdd(bv, w1, d41);
            bv = TV.Splat(Unsafe.Add(ref bq, 5)); d50 = TV.FusedMultiplyAdd(bv, w0, d50); d51 = TV.FusedMultiplyAdd(bv, w1, d51);
            bv = TV.Splat(Unsafe.Add(ref bq, 6)); d60 = TV.FusedMultiplyAdd(bv, w0, d60); d61 = TV.FusedMultiplyAdd(bv, w1, d61);
            ap = ref Unsafe.Add(ref ap, s);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l); TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l); TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
        TV.Store(c40, ref c, 4 * s); TV.Store(c41, ref c, 4 * s + l); TV.Store(c50, ref c, 5 * s); TV.Store(c51, ref c, 5 * s + l);
        TV.Store(c60, ref c, 6 * s); TV.Store(c61, ref c, 6 * s + l);
        TV.Store(d00, ref c, 7 * s); TV.Store(d01, ref c, 7 * s + l); TV.Store(d10, ref c, 8 * s); TV.Store(d11, ref c, 8 * s + l);
        TV.Store(d20, ref c, 9 * s); TV.Store(d21, ref c, 9 * s + l); TV.Store(d30, ref c, 10 * s); TV.Store(d31, ref c, 10 * s + l);
        TV.Store(d40, ref c, 11 * s); TV.Store(d41, ref c, 11 * s + l); TV.Store(d50, ref c, 12 * s);
        TV.Store(d51, ref c, 12 * s + l); TV.Store(d60, ref c, 13 * s); TV.Store(d61, ref c, 13 * s + l);
    }

    /// <summary>Positions 0–3 of <see cref="MicroRows{TV, TO}"/>'s tile (8 accumulators).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroRows4<TV, TO>(ref TF a, ref TF b, TO off, ref TF c, int kc, bool first)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        nuint l = (nuint)TV.Count, s = 2 * l;
        TV c00, c01, c10, c11, c20, c21, c30, c31;
        if (first) c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = TV.Zero;
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
            c30 = TV.Load(ref c, 3 * s); c31 = TV.Load(ref c, 3 * s + l);
        }
        ref TF ap = ref a;
        // Equally spaced rows of B advance by their step (Winograd's planes, 1x1 kernels); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        for (int kk = 0; kk < kc; kk++, bp = ref Unsafe.Add(ref bp, bs))
        {
            if (!TO.IsStepped) bp = ref Unsafe.Add(ref b, off.At(kk));
            var w0 = TV.Load(ref ap, 0);
            var w1 = TV.Load(ref ap, l);
            TV bv;
            bv = TV.Splat(bp); c00 = TV.FusedMultiplyAdd(bv, w0, c00); c01 = TV.FusedMultiplyAdd(bv, w1, c01);
            bv = TV.Splat(Unsafe.Add(ref bp, 1)); c10 = TV.FusedMultiplyAdd(bv, w0, c10); c11 = TV.FusedMultiplyAdd(bv, w1, c11);
            bv = TV.Splat(Unsafe.Add(ref bp, 2)); c20 = TV.FusedMultiplyAdd(bv, w0, c20); c21 = TV.FusedMultiplyAdd(bv, w1, c21);
            bv = TV.Splat(Unsafe.Add(ref bp, 3)); c30 = TV.FusedMultiplyAdd(bv, w0, c30); c31 = TV.FusedMultiplyAdd(bv, w1, c31);
            ap = ref Unsafe.Add(ref ap, s);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
        TV.Store(c30, ref c, 3 * s); TV.Store(c31, ref c, 3 * s + l);
    }

    /// <summary>Positions 4–6 of <see cref="MicroRows{TV, TO}"/>'s tile (b and c already advanced to position 4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroRows3<TV, TO>(ref TF a, ref TF b, TO off, ref TF c, int kc, bool first)
        where TV : unmanaged, ISimd<TV, TF> where TO : IOffsets, allows ref struct
    {
        nuint l = (nuint)TV.Count, s = 2 * l;
        TV c00, c01, c10, c11, c20, c21;
        if (first) c00 = c01 = c10 = c11 = c20 = c21 = TV.Zero;
        else
        {
            c00 = TV.Load(ref c, 0); c01 = TV.Load(ref c, l);
            c10 = TV.Load(ref c, s); c11 = TV.Load(ref c, s + l);
            c20 = TV.Load(ref c, 2 * s); c21 = TV.Load(ref c, 2 * s + l);
        }
        ref TF ap = ref a;
        // Equally spaced rows of B advance by their step (Winograd's planes, 1x1 kernels); tables are read row by row.
        bool stepped = TO.IsStepped && kc > 0;
        nint bs = stepped ? off.Step : 0;
        ref TF bp = ref Unsafe.Add(ref b, stepped ? off.At(0) : 0);
        for (int kk = 0; kk < kc; kk++, bp = ref Unsafe.Add(ref bp, bs))
        {
            if (!TO.IsStepped) bp = ref Unsafe.Add(ref b, off.At(kk));
            var w0 = TV.Load(ref ap, 0);
            var w1 = TV.Load(ref ap, l);
            TV bv;
            bv = TV.Splat(bp); c00 = TV.FusedMultiplyAdd(bv, w0, c00); c01 = TV.FusedMultiplyAdd(bv, w1, c01);
            bv = TV.Splat(Unsafe.Add(ref bp, 1)); c10 = TV.FusedMultiplyAdd(bv, w0, c10); c11 = TV.FusedMultiplyAdd(bv, w1, c11);
            bv = TV.Splat(Unsafe.Add(ref bp, 2)); c20 = TV.FusedMultiplyAdd(bv, w0, c20); c21 = TV.FusedMultiplyAdd(bv, w1, c21);
            ap = ref Unsafe.Add(ref ap, s);
        }
        TV.Store(c00, ref c, 0); TV.Store(c01, ref c, l);
        TV.Store(c10, ref c, s); TV.Store(c11, ref c, s + l);
        TV.Store(c20, ref c, 2 * s); TV.Store(c21, ref c, 2 * s + l);
    }
}

/// <summary>
/// A weight tensor's packing for the row kernel, computed on its first use and kept: only for weights that never change
/// after it is made (an inference plan's folded convolutions own one each). Not for concurrent use.
/// </summary>
internal sealed class ConvWeightPack
{
    /// <summary>The packed weights (a float[] or double[]), or null before the first use.</summary>
    public Array? Data { get; set; }

    /// <summary>The channel lanes per block the packing was made for.</summary>
    public int Lanes { get; set; }
}
