namespace Loop.Runtime;

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Loop.Domain.Agents;

/// <summary>Who owns a file and who this process is: what .NET does not tell, asked of libc.</summary>
public static partial class UnixOwnership
{
    /// <summary>The effective user and group of this process.</summary>
    public static UnixUser Current() => OperatingSystem.IsWindows() ? new UnixUser(1, 1) : new UnixUser(geteuid(), getegid());

    /// <summary>The owner of <paramref name="path"/> (links followed), or null when it cannot be told
    /// (the path is missing, or the system has no <c>statx</c>).</summary>
    public static UnixUser? OwnerOf(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        // struct statx has the same layout on every Linux architecture: uid at byte 20, gid at 24.
        var buffer = new byte[256];
        try
        {
            if (statx(AtFdCwd, path, 0, StatxUid | StatxGid, buffer) != 0)
            {
                return null;
            }
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
        return new UnixUser(BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(20)), BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(24)));
    }

    /// <summary>Gives <paramref name="directory"/> and everything in it to <paramref name="user"/> when
    /// the directory itself belongs to someone else (links are changed, never followed).</summary>
    public static void EnsureOwnedBy(string directory, UnixUser user)
    {
        if (OwnerOf(directory) == user)
        {
            return;
        }
        Change(directory, user);
        foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*", new EnumerationOptions
        {
            RecurseSubdirectories = true,
            AttributesToSkip = 0,
            IgnoreInaccessible = false,
        }))
        {
            Change(entry, user);
        }
    }

    /// <summary>Gives one file or directory to <paramref name="user"/> (a link itself, not its target).</summary>
    public static void Change(string path, UnixUser user)
    {
        if (lchown(path, user.Uid, user.Gid) != 0)
        {
            throw new IOException($"cannot give {path} to {user}: {Marshal.GetLastPInvokeErrorMessage()}");
        }
    }

    private const int AtFdCwd = -100;
    private const uint StatxUid = 0x8;
    private const uint StatxGid = 0x10;

    [LibraryImport("libc")]
    private static partial uint geteuid();

    [LibraryImport("libc")]
    private static partial uint getegid();

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int statx(int dirfd, string path, int flags, uint mask, byte[] buffer);

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int lchown(string path, uint owner, uint group);
}
