namespace Loop.Runtime;

using System.Text;

/// <summary>Files only the daemon's user may read (tokens, keys), written whole. They are a few bytes:
/// written synchronously.</summary>
public static class PrivateFiles
{
    public static void Write(string path, string text)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var file = new FileStream(temporary, options))
        {
            file.Write(Encoding.ASCII.GetBytes(text));
        }
        // Renamed into place so a reader never sees half of it.
        File.Move(temporary, path, overwrite: true);
    }
}
