using Attention.Reference.Imaging;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.Imaging;

/// <summary>
/// The inference preprocessing against torchvision 0.14 + Pillow 9.4 (testdata/images/README.md): the PNG path bit for
/// bit, the JPEG path up to the decoders' differences.
/// </summary>
public sealed class ImagingTests(ITestOutputHelper log)
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "testdata", "images");

    [Theory]
    [InlineData("bilinear_0.875", Interpolation.Bilinear, 0.875)]
    [InlineData("bicubic_0.95", Interpolation.Bicubic, 0.95)]
    public void PngPreprocessingIsTorchvisionsTensorBitForBit(string name, Interpolation filter, double cropPct)
    {
        var x = new ImageRecipe(224, cropPct, filter, "test").Apply(RgbImage.Load(Path.Combine(Dir, "sample_97x73.png")));
        var expected = Npy.Read(Path.Combine(Dir, $"expected_png_{name}.npy"));
        Assert.Equal(expected.Shape, x.ShapeArray());
        for (int i = 0; i < x.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits((float)expected.Values[i]) == BitConverter.SingleToInt32Bits(x.Data[i]),
                $"{name}: element {i}: {x.Data[i]:R}, torchvision {expected.Values[i]:R}");
    }

    [Theory]
    [InlineData("bilinear_0.875", Interpolation.Bilinear, 0.875)]
    [InlineData("bicubic_0.95", Interpolation.Bicubic, 0.95)]
    public void JpegPreprocessingDiffersOnlyByTheDecoder(string name, Interpolation filter, double cropPct)
    {
        var x = new ImageRecipe(224, cropPct, filter, "test").Apply(RgbImage.Load(Path.Combine(Dir, "sample_97x73.jpg")));
        var expected = Npy.Read(Path.Combine(Dir, $"expected_jpg_{name}.npy"));
        double worst = 0, sum = 0;
        for (int i = 0; i < x.Length; i++)
        {
            double d = Math.Abs(x.Data[i] - expected.Values[i]);
            worst = Math.Max(worst, d);
            sum += d;
        }
        log.WriteLine($"{name}: JPEG stb_image vs libjpeg: max |Δ| {worst:E2}, mean {sum / x.Length:E2} (1/255/std = {1 / 255.0 / 0.225:E2})");
        // A few 8-bit levels at most (stb_image's and libjpeg's IDCT and chroma upsampling differ).
        Assert.True(worst <= 4 / 255.0 / 0.224, $"max |Δ| {worst}");
        Assert.True(sum / x.Length <= 1 / 255.0 / 0.224, $"mean |Δ| {sum / x.Length}");
    }

    [Fact]
    public void ResizeToTheSameSizeIsTheIdentityAndBadFilesAreRefused()
    {
        var img = RgbImage.Load(Path.Combine(Dir, "sample_97x73.png"));
        Assert.Equal(img.Pixels, Resample.Resize(img, img.Width, img.Height, Interpolation.Bicubic).Pixels);
        string bad = Path.Combine(Path.GetTempPath(), $"not-an-image-{Guid.NewGuid():N}.png");
        File.WriteAllBytes(bad, [0x89, 0x50, 0x4E, 0x47, 1, 2, 3]);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => RgbImage.Load(bad));
            Assert.StartsWith(bad, e.Message);
        }
        finally
        {
            File.Delete(bad);
        }
    }

    /// <summary>
    /// JPEGs whose marker segments run past the end of the file (a truncated file; a damaged length) are refused naming
    /// the file and the segment — both made StbImageSharp's header reader loop for minutes (the image fuzz found them).
    /// The good file, a truncation inside its scan and a length one past the end are checked too.
    /// </summary>
    [Fact]
    public async Task JpegSegmentsPastTheEndAreRefused()
    {
        var good = File.ReadAllBytes(Path.Combine(Dir, "sample_97x73.jpg"));
        Assert.Equal(97 * 73 * 3, RgbImage.Decode(good, "good.jpg").Pixels.Length);
        byte[] truncatedHeader = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0x4A, 0x46, 0x49]; // APP0 declares 16 bytes, has 5
        var longApp0 = (byte[])good.Clone();
        longApp0[4] = 0x80; // APP0's length 0x8010: past the end of a 4 KB file
        var onePast = (byte[])good.Clone();
        int appLength = (good[4] << 8) | good[5];
        Array.Resize(ref onePast, 2 + 2 + appLength + 1); // cut one byte after APP0: the next segment's marker is cut off
        foreach (var (bytes, what) in new[] { (truncatedHeader, "declares 16 bytes"), (longApp0, "declares 32784 bytes"),
                     (onePast, "before its end marker"), (good[..(good.Length / 2)], "before its end marker") })
        {
            // On a worker with a deadline: without the walk the decoder does not return (the test must fail, not hang).
            var e = await Task.Run(() => Assert.Throws<InvalidDataException>(() => RgbImage.Decode(bytes, "bad.jpg")))
                .WaitAsync(TimeSpan.FromSeconds(20)); // a TimeoutException fails the test
            Assert.StartsWith("bad.jpg: damaged JPEG", e.Message);
            Assert.Contains(what, e.Message);
        }
    }
}
