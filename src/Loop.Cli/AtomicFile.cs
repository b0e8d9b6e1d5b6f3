namespace Loop.Cli;

using System.Text;

/// <summary>Writes a file whole or not at all (a temp file beside it, then a rename), so an
/// interrupted command never leaves a half-written config behind.</summary>
internal static class AtomicFile
{
    /// <summary>0600: the file may hold secrets.</summary>
    public const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>0644.</summary>
    public const UnixFileMode ReadableMode = PrivateMode | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>0755.</summary>
    public const UnixFileMode ExecutableMode = ReadableMode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="content"/> (UTF-8, no BOM).
    /// <paramref name="mode"/> null keeps the existing file's mode, or the umask's for a new file.</summary>
    public static void Write(string path, string content, UnixFileMode? mode)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        var unix = !OperatingSystem.IsWindows();
        if (unix && mode is null && File.Exists(path))
        {
            mode = File.GetUnixFileMode(path);
        }

        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (unix && mode is { } createMode)
            {
                // Created with the final mode, so a secret is never readable by others, not even briefly.
                options.UnixCreateMode = createMode & PrivateMode;
            }

            using (var writer = new StreamWriter(temp, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), options))
            {
                writer.Write(content);
            }

            if (unix && mode is { } finalMode)
            {
                File.SetUnixFileMode(temp, finalMode); // exact, whatever the umask
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
