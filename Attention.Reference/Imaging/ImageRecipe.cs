namespace Attention.Reference.Imaging;

/// <summary>
/// How a model's pretrained weights expect an image: resize the shorter side to ⌊size / crop_pct⌋ with the named
/// filter (Pillow's, bit for bit), center-crop size × size (offsets rounded half to even, as torchvision), scale to
/// [0, 1] by /255 and normalise by the ImageNet mean and std — each step in float32, exactly as torchvision's
/// <c>ToTensor</c>/<c>Normalize</c> (and timm's eval transform) compute the tensor.
/// </summary>
/// <param name="Size">The crop (the network's input) size.</param>
/// <param name="CropPct">The fraction of the resized shorter side kept by the center crop.</param>
/// <param name="Filter">The resampling filter.</param>
/// <param name="Source">Where the recipe comes from (for messages and docs).</param>
public sealed record ImageRecipe(int Size, double CropPct, Interpolation Filter, string Source)
{
    /// <summary>ImageNet mean (R, G, B).</summary>
    public static readonly float[] Mean = [0.485f, 0.456f, 0.406f];

    /// <summary>ImageNet standard deviation (R, G, B).</summary>
    public static readonly float[] Std = [0.229f, 0.224f, 0.225f];

    /// <summary>The shorter side after the resize: ⌊size / crop_pct⌋ (timm; torchvision's 256 for 224 at 0.875).</summary>
    public int ResizeTo => (int)Math.Floor(Size / CropPct);

    /// <summary>The resize and crop only (8-bit).</summary>
    public RgbImage ResizeAndCrop(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (Size < 1 || !(CropPct > 0 && CropPct <= 1)) throw new ArgumentException($"size {Size} and crop_pct {CropPct} must be positive, crop_pct at most 1");
        int s = ResizeTo, w = image.Width, h = image.Height;
        // torchvision's _compute_resized_output_size: the shorter side to s, the longer to int(s · long / short).
        var (nw, nh) = w <= h ? (s, (int)Math.Min(int.MaxValue, (double)s * h / w)) : ((int)Math.Min(int.MaxValue, (double)s * w / h), s);
        if ((long)nw * nh > RgbImage.MaxPixels)
            throw new InvalidDataException(
                $"the image is {w}x{h}: resizing its shorter side to {s} (the model's preprocessing) would make it {nw}x{nh}, " +
                $"more than {RgbImage.MaxPixels} pixels; an aspect ratio this extreme is not a photograph the model can classify — crop it first.");
        var resized = Resample.Resize(image, nw, nh, Filter);
        int top = (int)Math.Round((nh - Size) / 2.0, MidpointRounding.ToEven), left = (int)Math.Round((nw - Size) / 2.0, MidpointRounding.ToEven);
        var crop = new byte[Size * Size * 3];
        for (int y = 0; y < Size; y++)
            Array.Copy(resized.Pixels, ((y + top) * nw + left) * 3, crop, y * Size * 3, Size * 3);
        return new RgbImage(Size, Size, crop);
    }

    /// <summary>The network input [1, 3, Size, Size], float32: (v / 255 − mean) / std per channel.</summary>
    public DenseTensor<float> Apply(RgbImage image)
    {
        var crop = ResizeAndCrop(image);
        int plane = Size * Size;
        var t = new DenseTensor<float>(1, 3, Size, Size);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < plane; i++)
                t.Data[c * plane + i] = (crop.Pixels[i * 3 + c] / 255f - Mean[c]) / Std[c];
        return t;
    }
}
