namespace Loop.Docker;

using System.Formats.Tar;
using Loop.Docker.Engine;

/// <summary>Builds an image from files held in memory (no build directory on disk).</summary>
public sealed class ImageBuilder(DockerEngineClient client)
{
    /// <param name="files">Build context: path inside the context → content. "Dockerfile" must be among them.
    /// Files ending in ".sh" are made executable.</param>
    public async Task BuildAsync(
        string tag,
        IReadOnlyDictionary<string, byte[]> files,
        IReadOnlyDictionary<string, string> buildArgs,
        Action<string> progress,
        CancellationToken cancellationToken)
    {
        using var context = await CreateContextAsync(files, cancellationToken).ConfigureAwait(false);
        await client.BuildImageAsync(context, tag, buildArgs, progress, cancellationToken).ConfigureAwait(false);
    }

    internal static async Task<MemoryStream> CreateContextAsync(IReadOnlyDictionary<string, byte[]> files, CancellationToken cancellationToken)
    {
        var tar = new MemoryStream();
        await using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, content) in files.OrderBy(f => f.Key, StringComparer.Ordinal))
            {
                var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
                {
                    DataStream = new MemoryStream(content, writable: false),
                    Mode = name.EndsWith(".sh", StringComparison.Ordinal)
                        ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                        : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
                };
                await writer.WriteEntryAsync(entry, cancellationToken).ConfigureAwait(false);
            }
        }

        tar.Position = 0;
        return tar;
    }
}
