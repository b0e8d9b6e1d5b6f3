namespace Loop.Docker;

using System.Formats.Tar;
using global::Docker.DotNet;
using global::Docker.DotNet.Models;

/// <summary>Checks for an image and builds one from files held in memory (no build directory on disk).</summary>
public sealed class ImageBuilder(DockerEngine engine)
{
    /// <exception cref="DockerUnavailableException">The engine cannot be reached.</exception>
    public async Task<bool> ExistsAsync(string image, CancellationToken cancellationToken) =>
        (await InspectLabelAsync(image, AgentImageSource.HashLabel, cancellationToken).ConfigureAwait(false)).Exists;

    /// <summary>Whether the image exists, and the value of one of its labels.</summary>
    /// <exception cref="DockerUnavailableException">The engine cannot be reached.</exception>
    public async Task<(bool Exists, string? Label)> InspectLabelAsync(string image, string label, CancellationToken cancellationToken)
    {
        var docker = await engine.ConnectAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var inspected = await docker.Images.InspectImageAsync(image, cancellationToken).ConfigureAwait(false);
            return (true, inspected.Config?.Labels is { } labels && labels.TryGetValue(label, out var value) ? value : null);
        }
        catch (DockerImageNotFoundException)
        {
            return (false, null);
        }
        catch (Exception e) when (DockerEngine.IsUnreachable(e))
        {
            throw engine.Unreachable(e);
        }
        catch (DockerApiException e)
        {
            throw new ImageBuildException($"Docker could not look up image {image}: {DockerEngine.Message(e)}", e);
        }
    }

    /// <param name="files">Build context: path inside the context → content. "Dockerfile" must be among them.
    /// Files ending in ".sh" are made executable.</param>
    /// <param name="progress">Each line of the build's output, as it comes.</param>
    /// <exception cref="ImageBuildException">A step failed; the message is the engine's.</exception>
    /// <exception cref="DockerUnavailableException">The engine cannot be reached.</exception>
    public async Task BuildAsync(
        string tag,
        IReadOnlyDictionary<string, byte[]> files,
        IReadOnlyDictionary<string, string> buildArgs,
        Action<string> progress,
        CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? labels = null)
    {
        var docker = await engine.ConnectAsync(cancellationToken).ConfigureAwait(false);
        using var context = await CreateContextAsync(files, cancellationToken).ConfigureAwait(false);
        var output = new BuildOutput(progress);
        try
        {
            await docker.Images.BuildImageFromDockerfileAsync(
                new ImageBuildParameters { Tags = [tag], Remove = true, ForceRemove = true, BuildArgs = buildArgs.ToDictionary(), Labels = labels?.ToDictionary() },
                context, authConfigs: null, headers: null, output, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (DockerEngine.IsUnreachable(e))
        {
            throw engine.Unreachable(e);
        }
        catch (DockerApiException e)
        {
            throw new ImageBuildException(DockerEngine.Message(e), e);
        }

        if (output.Error is { } error)
        {
            throw new ImageBuildException(error);
        }
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

    /// <summary>Reported to in order, on the reading thread (unlike <see cref="Progress{T}"/>, which
    /// posts each report and could reorder lines). The engine reports a failed step as a message,
    /// not as an HTTP error: the first one is kept.</summary>
    private sealed class BuildOutput(Action<string> progress) : IProgress<JSONMessage>
    {
        public string? Error { get; private set; }

        public void Report(JSONMessage value)
        {
            if (value.Error?.Message is { Length: > 0 } error)
            {
                Error ??= error;
                return;
            }

            foreach (var text in (ReadOnlySpan<string?>)[value.Stream, value.Status])
            {
                foreach (var part in (text ?? "").Split('\n'))
                {
                    var line = part.TrimEnd('\r');
                    if (line.Length > 0)
                    {
                        progress(line);
                    }
                }
            }
        }
    }
}

/// <summary>The agent image could not be built or looked up; the message is the engine's.</summary>
public sealed class ImageBuildException(string message, Exception? inner = null) : Exception(message, inner);
