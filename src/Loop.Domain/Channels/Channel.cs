namespace Loop.Domain.Channels;

/// <summary>A conversation bound to a project directory. <see cref="DirPath"/> is null for a
/// channel that works in its own folder under the Loop home. <see cref="Platform"/> and
/// <see cref="ExternalId"/> name the chat channel it is bound to (e.g. "discord" and a channel
/// snowflake), if any. <see cref="Mode"/> says where its agent runs and <see cref="Model"/> which
/// model it asks for (null: the configured <c>claude_model</c>, else the default); <see cref="Progress"/>
/// how much of a run's work its chat shows while it runs. <see cref="Fork"/> is set on a channel forked
/// from another (a Discord thread): where it branched off.</summary>
public sealed record Channel(
    string Id,
    string Name,
    string? DirPath,
    string? SessionId,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt,
    string? Platform = null,
    string? ExternalId = null,
    ChannelMode Mode = ChannelMode.Container,
    string? Model = null,
    ChannelProgress Progress = ChannelProgress.Tools,
    ChannelFork? Fork = null)
{
    /// <summary>The channel of tasks created without one (<c>loop tasks add</c> with no channel).</summary>
    public const string TasksChannelId = "ch_tasks";
}

/// <summary>Where a forked channel branched off: its parent, the parent's Claude session then (its first
/// run resumes it with <c>--fork-session</c>, leaving the parent's conversation as it was; null when the
/// parent had none), and the parent's project directory then (the fork works there too; null: in its
/// own folder). <see cref="WantsWorktree"/>: the fork works in a git worktree of its own of that directory's
/// repository rather than in the directory itself; <see cref="Worktree"/> is that worktree once made (its
/// first run makes it).</summary>
public sealed record ChannelFork(string ParentId, string? SessionId, string? DirPath, bool WantsWorktree = false, ForkWorktree? Worktree = null);

/// <summary>A fork's own git worktree: <see cref="Repo"/> is the repository's main working tree (its
/// <c>.git</c> directory is <see cref="GitDir"/>), <see cref="Path"/> the worktree, on branch
/// <see cref="Branch"/>, and <see cref="WorkDir"/> where the fork's agent works in it: the worktree,
/// or the same subdirectory of it that the parent's directory is of its repository.</summary>
public sealed record ForkWorktree(string Repo, string Path, string Branch, string WorkDir)
{
    /// <summary>The repository's git directory: a worktree's <c>.git</c> file names a folder in it by its
    /// absolute path, so the agent's container has it mounted at the same path.</summary>
    public string GitDir => System.IO.Path.Join(Repo, ".git");

    /// <summary>The branch a fork's worktree is made on: one per fork, so forks never share a checkout.</summary>
    public static string BranchFor(string forkId) => $"loop/{forkId}";

    /// <summary>Where a fork's worktree goes in its repository: where Claude Code's own <c>--worktree</c> puts them.</summary>
    public static string PathFor(string repo, string forkId) => System.IO.Path.Join(repo, ".claude", "worktrees", forkId);
}

/// <summary>The fork's git worktree could not be made or used; the message says why, in a person's words.</summary>
public sealed class ForkWorktreeException(string message) : Exception(message);

/// <summary>The git worktrees of forks, made with the git command line.</summary>
public interface IForkWorktrees
{
    /// <summary>The fork's worktree, made now when it is not there yet (its first run, or after it was
    /// removed: then on the branch it had, with its commits). Throws <see cref="ForkWorktreeException"/>.</summary>
    Task<ForkWorktree> EnsureAsync(Channel fork, CancellationToken cancellationToken);

    /// <summary>Removes the worktree (its branch stays). Unless <paramref name="force"/>, one with changes not
    /// committed is kept: the answer then says what they are. Null when it is gone.</summary>
    Task<string?> RemoveAsync(ForkWorktree worktree, bool force, CancellationToken cancellationToken);
}

/// <summary>Where a channel's agent runs.</summary>
public enum ChannelMode
{
    /// <summary>Claude Code in a Docker container, with tools and the project mounted (the default).</summary>
    Container,

    /// <summary>The Anthropic Messages API called from the daemon: chat only, no tools, no files.</summary>
    Direct,
}

/// <summary>What a channel's chat shows of a run while it works (a status message edited in place).</summary>
public enum ChannelProgress
{
    /// <summary>Nothing: the chat shows typing, then the reply.</summary>
    Off,

    /// <summary>The tool calls so far and the time elapsed (the default).</summary>
    Tools,

    /// <summary>Also the agent's short remarks between its tool calls.</summary>
    Verbose,
}

/// <summary>How a channel's agent runs and shows its work, as a channel is registered with it.</summary>
public sealed record ChannelAgent(ChannelMode Mode, string? Model, ChannelProgress Progress = ChannelProgress.Tools)
{
    public static readonly ChannelAgent Default = new(ChannelMode.Container, null);

    public const int MaxModelLength = 100;

    /// <summary>The words the API, the config and connectors take for <c>mode</c>.</summary>
    public const string ModeWords = "\"container\" (Claude Code in a Docker container, with tools) or \"direct\" (chat only, through the Anthropic API)";

    /// <summary>The words the API, the config and connectors take for <c>progress</c>.</summary>
    public const string ProgressWords = "\"off\", \"tools\" (the tool calls so far) or \"verbose\" (also the agent's remarks between them)";

    /// <summary>The progress setting a user wrote, in any case; null when it is none.</summary>
    public static ChannelProgress? ParseProgress(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "off" => ChannelProgress.Off,
        "tools" => ChannelProgress.Tools,
        "verbose" => ChannelProgress.Verbose,
        _ => null,
    };

    /// <summary>The mode a user wrote, in any case; null when it is no mode.</summary>
    public static ChannelMode? ParseMode(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "container" => ChannelMode.Container,
        "direct" => ChannelMode.Direct,
        _ => null,
    };

    /// <summary>What is wrong with a model name, or null when it is fine. A model name reaches the
    /// <c>claude</c> command line as <c>--model</c>: it may not look like an option, nor hold spaces.</summary>
    public static string? ModelProblem(string model)
    {
        if (model.Length is 0 or > MaxModelLength)
        {
            return $"model must be 1 to {MaxModelLength} characters, like \"claude-sonnet-4-5\"";
        }
        if (!char.IsAsciiLetterOrDigit(model[0]) || !model.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or ':' or '@' or '/' or '[' or ']'))
        {
            return $"model must be a model name or alias like \"claude-sonnet-4-5\" or \"sonnet\": letters, digits and - . _ : @ / [ ], starting with a letter or digit (found \"{model}\")";
        }
        return null;
    }
}

public static class ChannelModeExtensions
{
    /// <summary>The wire name, in the API and the store: container, direct.</summary>
    public static string ToWire(this ChannelMode mode) => mode switch
    {
        ChannelMode.Container => "container",
        ChannelMode.Direct => "direct",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown channel mode"),
    };

    public static ChannelMode FromWire(string value) =>
        ChannelAgent.ParseMode(value) is { } mode && mode.ToWire() == value
            ? mode
            : throw new ArgumentOutOfRangeException(nameof(value), value, "unknown channel mode");
}

public static class ChannelProgressExtensions
{
    /// <summary>The wire name, in the API and the store: off, tools, verbose.</summary>
    public static string ToWire(this ChannelProgress progress) => progress switch
    {
        ChannelProgress.Off => "off",
        ChannelProgress.Tools => "tools",
        ChannelProgress.Verbose => "verbose",
        _ => throw new ArgumentOutOfRangeException(nameof(progress), progress, "unknown progress setting"),
    };

    public static ChannelProgress FromWire(string value) =>
        ChannelAgent.ParseProgress(value) is { } progress && progress.ToWire() == value
            ? progress
            : throw new ArgumentOutOfRangeException(nameof(value), value, "unknown progress setting");
}
