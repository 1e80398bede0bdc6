using Attention.Reference.Kernels;

namespace Attention.Reference.Kernels.Conv;

/// <summary>
/// One plane zero-padded by (ph, pw) and split into sh·sw stride phases of Hq × Wq (Eq. (conv.8)); for stride 1
/// just the padded plane: the layout the dense and the depthwise kernels read, one channel at a time.
/// </summary>
internal readonly record struct Phases(int H, int W, int Sh, int Sw, int Ph, int Pw, int Hq, int Wq)
{
    /// <summary>The layout for an h × w plane.</summary>
    public static Phases Of(int h, int w, (int H, int W) stride, (int H, int W) pad) =>
        new(h, w, stride.H, stride.W, pad.H, pad.W, Ceil(h + 2 * pad.H, stride.H), Ceil(w + 2 * pad.W, stride.W));

    private static int Ceil(int a, int b) => (a + b - 1) / b;

    private static int FloorDiv(int a, int b) => a >= 0 ? a / b : -((-a + b - 1) / b);

    /// <summary>Rows × columns of one phase plane.</summary>
    public int Plane => Hq * Wq;

    /// <summary>All sh·sw phase planes.</summary>
    public int Total => Sh * Sw * Plane;

    /// <summary>Offset of tap (p, q) (dilated by (dh, dw)): its phase plane, shifted ⌊p·dh/sh⌋ rows and ⌊q·dw/sw⌋ columns.</summary>
    public int TapOffset(int rh, int rw) => (rh % Sh * Sw + rw % Sw) * Plane + rh / Sh * Wq + rw / Sw;

    /// <summary>Rows narrower than this are copied into a cleared plane by <see cref="FillPadded{TF}"/>.</summary>
    private const int NarrowRow = 48;

    /// <summary>
    /// Stride 1: the zero-padded plane, written as one pass of short copies and zero runs (the right padding of a row
    /// and the left padding of the next are one run). Row by row span calls (a 1-element clear, a 56-element copy, a
    /// 1-element clear) cost 75–110 µs for a 64 × 56 × 56 input, most of a 3×3 layer's non-product time.
    /// </summary>
    private void FillPadded<TF>(ReadOnlySpan<TF> src, Span<TF> dst) where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        int h = H, w = W, wq = Wq, plane = Hq * Wq;
        if (src.Length < h * w || dst.Length < plane || wq != w + 2 * Pw || Hq != h + 2 * Ph)
            throw new ArgumentException("padded fill: spans do not match the layout");
        int first = Ph * wq + Pw;
        ref TF s = ref MemoryMarshal.GetReference(src);
        ref TF d = ref MemoryMarshal.GetReference(dst);
        if (w < NarrowRow)
        {
            // Narrow rows: the plane cleared by whole vectors, then the rows copied in. (Their few zeros written
            // between the rows' overlapping vector copies ran 3–4 times slower here: 50 µs for 256 planes of 14 × 14,
            // against 11.)
            dst[..plane].Clear();
            for (int u = 0; u < h; u++)
            {
                int at = first + u * wq;
                if (w >= Vector<TF>.Count) Strided.CopyShort(ref Unsafe.Add(ref s, u * w), ref Unsafe.Add(ref d, at), w);
                else src.Slice(u * w, w).CopyTo(dst.Slice(at, w));
            }
            return;
        }
        // Zeros up to the first element of row Ph (the top rows and that row's left padding); each row's values, then
        // the zeros up to the next row's first value; the last row's right padding and the bottom rows.
        dst[..first].Clear();
        for (int u = 0; u < h; u++)
        {
            int at = first + u * wq;
            Strided.CopyShort(ref Unsafe.Add(ref s, u * w), ref Unsafe.Add(ref d, at), w);
            if (u + 1 < h) for (int z = at + w; z < at + wq; z++) Unsafe.Add(ref d, z) = TF.Zero;
        }
        dst[(first + (h - 1) * wq + w)..plane].Clear();
    }

    /// <summary>Writes the padded, phase-split plane (Total elements of <paramref name="dst"/>).</summary>
    public void Fill<TF>(ReadOnlySpan<TF> src, Span<TF> dst) where TF : unmanaged, IFloatingPointIeee754<TF> => Fill(src, dst, Sh * Sw);

    /// <summary>Writes the first <paramref name="phases"/> phase planes (in the order (a, b) = (0, 0), (0, 1), …).</summary>
    public void Fill<TF>(ReadOnlySpan<TF> src, Span<TF> dst, int phases) where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        if (Sh == 1 && Sw == 1 && phases >= 1)
        {
            FillPadded(src, dst);
            return;
        }
        FillRows(src, dst, phases, 0, Hq);
    }

    /// <summary>
    /// Rows [u0, u1) of the first <paramref name="phases"/> phase planes of a strided layout (a band of
    /// <see cref="Fill{TF}(ReadOnlySpan{TF}, Span{TF}, int)"/>: bands written by different threads make the same plane).
    /// With sw = 2 both column phases of a row come from one pass over the source row.
    /// </summary>
    public void FillRows<TF>(ReadOnlySpan<TF> src, Span<TF> dst, int phases, int u0, int u1)
        where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        if (u0 < 0 || u1 > Hq || src.Length < H * W || dst.Length < Math.Min(phases, Sh * Sw) * Plane)
            throw new ArgumentException("phase fill: spans or rows do not match the layout");
        for (int a = 0; a < Sh; a++)
        for (int b = 0; b < Sw; b++)
        {
            if (a * Sw + b >= phases) return;
            var phase = dst.Slice((a * Sw + b) * Plane, Plane);
            // Columns v with 0 ≤ v·sw + b − pw < W hold x; the others are padding.
            int lo = Math.Min(Wq, Math.Max(0, Ceil(Pw - b, Sw))), hi = Math.Max(lo, Math.Min(Wq, FloorDiv(W - 1 + Pw - b, Sw) + 1));
            // sw = 2: phases (a, 0) and (a, 1) together when their first source elements are neighbours.
            bool pair = Sw == 2 && b == 0 && a * Sw + 1 < phases;
            Span<TF> phase1 = default;
            int lo1 = 0, hi1 = 0, start0 = lo * Sw + b - Pw, start1 = 0;
            if (pair)
            {
                phase1 = dst.Slice((a * Sw + 1) * Plane, Plane);
                lo1 = Math.Min(Wq, Math.Max(0, Ceil(Pw - 1, Sw)));
                hi1 = Math.Max(lo1, Math.Min(Wq, FloorDiv(W - 1 + Pw - 1, Sw) + 1));
                start1 = lo1 * Sw + 1 - Pw;
                pair = Math.Abs(start1 - start0) == 1 && hi > lo && hi1 > lo1;
            }
            for (int u = u0; u < u1; u++)
            {
                var row = phase.Slice(u * Wq, Wq);
                int ih = u * Sh + a - Ph;
                if ((uint)ih >= (uint)H)
                {
                    row.Clear();
                    if (pair) phase1.Slice(u * Wq, Wq).Clear();
                    continue;
                }
                var srow = src.Slice(ih * W, W);
                if (Sw == 1)
                {
                    row[..Pw].Clear();
                    srow.CopyTo(row[Pw..]);
                    row[(Pw + W)..].Clear();
                    continue;
                }
                // The padding runs are a few elements: written inline (a call per run cost more than the run).
                for (int v = 0; v < lo; v++) row[v] = TF.Zero;
                for (int v = hi; v < row.Length; v++) row[v] = TF.Zero;
                if (!pair)
                {
                    Strided.Gather(srow, start0, Sw, row[lo..hi]);
                    continue;
                }
                var row1 = phase1.Slice(u * Wq, Wq);
                for (int v = 0; v < lo1; v++) row1[v] = TF.Zero;
                for (int v = hi1; v < row1.Length; v++) row1[v] = TF.Zero;
                if (start0 < start1) Strided.Deinterleave(srow, start0, row[lo..hi], row1[lo1..hi1]);
                else Strided.Deinterleave(srow, start1, row1[lo1..hi1], row[lo..hi]);
            }
            if (pair) b++;
        }
    }
}
