using System.Numerics;
using Attention.Reference.Kernels;

namespace Attention.Reference.Ops;

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

    /// <summary>Writes the padded, phase-split plane (Total elements of <paramref name="dst"/>).</summary>
    public void Fill<TF>(ReadOnlySpan<TF> src, Span<TF> dst) where TF : unmanaged, IFloatingPointIeee754<TF> => Fill(src, dst, Sh * Sw);

    /// <summary>Writes the first <paramref name="phases"/> phase planes (in the order (a, b) = (0, 0), (0, 1), …).</summary>
    public void Fill<TF>(ReadOnlySpan<TF> src, Span<TF> dst, int phases) where TF : unmanaged, IFloatingPointIeee754<TF>
    {
        for (int a = 0; a < Sh; a++)
        for (int b = 0; b < Sw; b++)
        {
            if (a * Sw + b >= phases) return;
            var phase = dst.Slice((a * Sw + b) * Plane, Plane);
            for (int u = 0; u < Hq; u++)
            {
                var row = phase.Slice(u * Wq, Wq);
                int ih = u * Sh + a - Ph;
                if ((uint)ih >= (uint)H) { row.Clear(); continue; }
                var srow = src.Slice(ih * W, W);
                if (Sw == 1)
                {
                    row[..Pw].Clear();
                    srow.CopyTo(row[Pw..]);
                    row[(Pw + W)..].Clear();
                }
                else
                {
                    // Columns v with 0 ≤ v·sw + b − pw < W hold x; the others are padding.
                    int lo = Math.Min(Wq, Math.Max(0, Ceil(Pw - b, Sw))), hi = Math.Max(lo, Math.Min(Wq, FloorDiv(W - 1 + Pw - b, Sw) + 1));
                    row[..lo].Clear();
                    Strided.Gather(srow, lo * Sw + b - Pw, Sw, row[lo..hi]);
                    row[hi..].Clear();
                }
            }
        }
    }
}
