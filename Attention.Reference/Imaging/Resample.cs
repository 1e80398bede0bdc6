namespace Attention.Reference.Imaging;

/// <summary>Resampling filters, as Pillow names them.</summary>
public enum Interpolation
{
    /// <summary>Triangle filter, support 1 (PIL.Image.BILINEAR).</summary>
    Bilinear,

    /// <summary>Keys cubic, a = −0.5, support 2 (PIL.Image.BICUBIC).</summary>
    Bicubic,
}

/// <summary>
/// Pillow's resize of an 8-bit image (<c>ImagingResample</c>, Resample.c, as in Pillow 9–11), reproduced bit for bit:
/// a separable, antialiased convolution (the filter's support is widened by the scale when shrinking), the horizontal
/// pass first over only the rows the vertical pass reads, each pass in 22-bit fixed point with its coefficients
/// normalised in double and rounded half away from zero, results rounded and clamped to 0..255 after each pass.
/// This is what torchvision's and timm's Resize do to a PIL image.
/// </summary>
public static class Resample
{
    private const int PrecisionBits = 32 - 8 - 2;

    private static double Filter(Interpolation f, double x)
    {
        if (x < 0) x = -x;
        if (f == Interpolation.Bilinear) return x < 1.0 ? 1.0 - x : 0.0;
        const double a = -0.5;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static double Support(Interpolation f) => f == Interpolation.Bilinear ? 1.0 : 2.0;

    /// <summary>Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output index, its first input, count and fixed-point weights.</summary>
    private static (int[] Min, int[] Count, int[] K, int KSize) Coefficients(int inSize, int outSize, Interpolation f)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = Support(f) * filterScale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var min = new int[outSize];
        var count = new int[outSize];
        var k = new int[checked(outSize * ksize)];
        var w = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale, ss = 1.0 / filterScale, ww = 0.0;
            int xmin = Math.Max((int)(center - support + 0.5), 0);
            int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
            for (int x = 0; x < xmax; x++)
            {
                w[x] = Filter(f, (x + xmin - center + 0.5) * ss);
                ww += w[x];
            }
            for (int x = 0; x < xmax; x++)
            {
                double v = ww != 0.0 ? w[x] / ww : w[x];
                k[xx * ksize + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
            }
            min[xx] = xmin;
            count[xx] = xmax;
        }
        return (min, count, k, ksize);
    }

    private static byte Clip8(long v)
    {
        long s = v >> PrecisionBits;
        return s < 0 ? (byte)0 : s > 255 ? (byte)255 : (byte)s;
    }

    /// <summary>The image resized to <paramref name="width"/> × <paramref name="height"/>.</summary>
    public static RgbImage Resize(RgbImage image, int width, int height, Interpolation filter)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (width < 1 || height < 1 || (long)width * height > RgbImage.MaxPixels)
            throw new ArgumentException($"resize target {width}x{height} is outside 1 .. {RgbImage.MaxPixels} pixels");
        int inW = image.Width, inH = image.Height;
        bool horizontal = width != inW, vertical = height != inH;
        var (vMin, vCount, vK, vKs) = Coefficients(inH, height, filter);
        var src = image.Pixels;
        int rowFirst = 0, rows = inH;
        if (horizontal)
        {
            // Only the rows the vertical pass reads.
            rowFirst = vertical ? vMin[0] : 0;
            int rowLast = vertical ? vMin[height - 1] + vCount[height - 1] : inH;
            rows = rowLast - rowFirst;
            var (hMin, hCount, hK, hKs) = Coefficients(inW, width, filter);
            var tmp = new byte[checked(width * rows * 3)];
            for (int y = 0; y < rows; y++)
            {
                int rowIn = (y + rowFirst) * inW * 3, rowOut = y * width * 3;
                for (int xx = 0; xx < width; xx++)
                {
                    long r = 1L << (PrecisionBits - 1), g = r, b = r;
                    int xmin = hMin[xx], kb = xx * hKs;
                    for (int x = 0; x < hCount[xx]; x++)
                    {
                        int at = rowIn + (x + xmin) * 3, k = hK[kb + x];
                        r += src[at] * k;
                        g += src[at + 1] * k;
                        b += src[at + 2] * k;
                    }
                    tmp[rowOut + xx * 3] = Clip8(r);
                    tmp[rowOut + xx * 3 + 1] = Clip8(g);
                    tmp[rowOut + xx * 3 + 2] = Clip8(b);
                }
            }
            src = tmp;
            inW = width;
        }
        if (!vertical)
            return new RgbImage(width, height, horizontal ? src : (byte[])src.Clone());
        var dst = new byte[checked(width * height * 3)];
        for (int yy = 0; yy < height; yy++)
        {
            int ymin = vMin[yy] - rowFirst, kb = yy * vKs;
            for (int xx = 0; xx < width; xx++)
            {
                long r = 1L << (PrecisionBits - 1), g = r, b = r;
                for (int y = 0; y < vCount[yy]; y++)
                {
                    int at = ((y + ymin) * inW + xx) * 3, k = vK[kb + y];
                    r += src[at] * k;
                    g += src[at + 1] * k;
                    b += src[at + 2] * k;
                }
                int o = (yy * width + xx) * 3;
                dst[o] = Clip8(r);
                dst[o + 1] = Clip8(g);
                dst[o + 2] = Clip8(b);
            }
        }
        return new RgbImage(width, height, dst);
    }
}
