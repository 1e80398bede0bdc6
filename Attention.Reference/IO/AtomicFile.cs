namespace Attention.Reference.IO;

/// <summary>
/// Writes files so that a failure leaves nothing behind: write to a temporary name beside the target, then rename.
/// <para>
/// The output rule (every file the tool writes goes through here): the target must be a plain path to a regular
/// file or to nothing yet. An existing symbolic link, directory, device, pipe or socket is refused, never replaced:
/// give the real path. Outputs are therefore never written through a link, and never turn a device node into a
/// regular file.
/// </para>
/// </summary>
public static class AtomicFile
{
    /// <summary>Throws <see cref="IOException"/> unless <paramref name="path"/> is a regular file or does not exist.</summary>
    public static void CheckTarget(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path.Length == 0) throw new IOException("The output path is empty.");
        string full = Path.GetFullPath(path);
        var info = new FileInfo(full);
        if (info.LinkTarget is not null)
            throw new IOException($"Refusing to write '{path}': it is a symbolic link (to '{info.LinkTarget}'); give the real path.");
        if (Directory.Exists(full)) throw new IOException($"Refusing to write '{path}': it is a directory.");
        if (info.Exists && FileKind.Of(full) is var kind && kind is not (FileKind.Kind.Regular or FileKind.Kind.Unknown))
            throw new IOException($"Refusing to write '{path}': it exists and is a {kind.ToString().ToLowerInvariant()}, not a regular file.");
    }

    /// <summary>The absolute path with every symbolic link along it resolved (as far as the path exists).</summary>
    public static string Resolve(string path)
    {
        string full = Path.GetFullPath(path);
        string? root = Path.GetPathRoot(full);
        string current = root ?? "";
        foreach (var part in full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            string next = Path.Combine(current, part);
            for (int hops = 0; hops < 40; hops++)
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget is not { } link) break;
                next = Path.GetFullPath(Path.IsPathRooted(link) ? link : Path.Combine(Path.GetDirectoryName(next) ?? "", link));
            }
            current = next;
        }
        return current;
    }

    /// <summary>
    /// Throws unless <paramref name="folder"/> may be created or written into: if it exists it is a real folder, not a
    /// symbolic link (which would send the files elsewhere) or a file.
    /// </summary>
    public static void CheckFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var info = new DirectoryInfo(Path.GetFullPath(folder));
        if (info.LinkTarget is not null)
            throw new IOException($"Refusing to write into '{folder}': it is a symbolic link (to '{info.LinkTarget}'); give the real path.");
        if (File.Exists(info.FullName)) throw new IOException($"Refusing to write into '{folder}': it is a file, not a folder.");
    }

    /// <summary>Writes the bytes produced by <paramref name="write"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        CheckTarget(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? ".";
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"Cannot write '{path}': folder '{dir}' does not exist.");
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>Writes text atomically (UTF-8, no BOM).</summary>
    public static void WriteText(string path, string text) =>
        Write(path, s => { var bytes = new System.Text.UTF8Encoding(false).GetBytes(text); s.Write(bytes); });

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>The type of an existing file, from lstat(2) where the platform has it.</summary>
internal static class FileKind
{
    /// <summary>File types.</summary>
    internal enum Kind { Unknown, Regular, Directory, Link, Device, Pipe, Socket }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "lstat", SetLastError = true)]
    private static extern int LStat(string path, byte[] buffer);

    /// <summary>The kind of <paramref name="path"/>; <see cref="Kind.Unknown"/> where lstat is not available.</summary>
    internal static Kind Of(string path)
    {
        int offset = OperatingSystem.IsLinux()
            ? System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
            {
                System.Runtime.InteropServices.Architecture.X64 => 24,
                System.Runtime.InteropServices.Architecture.Arm64 => 16,
                _ => -1,
            }
            : OperatingSystem.IsMacOS() ? 4 : -1;
        if (offset < 0) return Kind.Unknown;
        try
        {
            var buffer = new byte[256];
            if (LStat(path, buffer) != 0) return Kind.Unknown;
            int mode = OperatingSystem.IsMacOS() ? BitConverter.ToUInt16(buffer, offset) : BitConverter.ToInt32(buffer, offset);
            return (mode & 0xF000) switch
            {
                0x8000 => Kind.Regular,
                0x4000 => Kind.Directory,
                0xA000 => Kind.Link,
                0x2000 or 0x6000 => Kind.Device,
                0x1000 => Kind.Pipe,
                0xC000 => Kind.Socket,
                _ => Kind.Unknown,
            };
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return Kind.Unknown;
        }
    }
}
