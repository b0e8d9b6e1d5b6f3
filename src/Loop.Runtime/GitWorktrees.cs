namespace Loop.Runtime;

using System.Diagnostics;
using System.Text;
using Loop.Config;
using Loop.Domain;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Microsoft.Extensions.Logging;

/// <summary>A git repository a fork's worktree can be made of: its main working tree <see cref="Repo"/>
/// (whose <c>.git</c> folder holds the history) and where in it the parent's directory lies (<see cref="SubDir"/>,
/// "." for its top).</summary>
public sealed record GitRepository(string Repo, string SubDir);

/// <summary>
/// The git worktrees of forks, made and removed with the real git command line.
/// <para>Where a worktree goes, and what its agent sees: <c>&lt;repo&gt;/.claude/worktrees/&lt;fork id&gt;</c>
/// (where Claude Code's own <c>--worktree</c> puts them), on branch <c>loop/&lt;fork id&gt;</c>. A worktree's
/// <c>.git</c> file names <c>&lt;repo&gt;/.git/worktrees/&lt;id&gt;</c> by its absolute path, so the container
/// mounts the repository's <c>.git</c> at its own path beside the worktree. It does not mount the repository
/// itself: the agent sees its own checkout and the history, not the parent's checkout nor other forks'
/// worktrees. Both are judged like any project dir (real paths, never the Loop home) before each run.</para>
/// <para>The repository is written to by agents (the parent's, this one's), so the daemon treats what is in
/// it as hostile when it runs git there: no hooks, no fsmonitor, no filter commands, no automatic gc. And
/// a repository that belongs to another user than the daemon's is accepted (safe.directory), which is safe
/// only because nothing of its config gets to run; what git makes there is given to that user.</para>
/// </summary>
public sealed class GitWorktrees(ProjectDirs projectDirs, ILogger<GitWorktrees> logger, TimeProvider time, ILoopEvents? events = null) : IForkWorktrees
{
    /// <summary>The repository <paramref name="dir"/> lies in, checked as a fork with a worktree needs it.</summary>
    /// <exception cref="ForkWorktreeException">It is not in one, or in one a worktree cannot be made of; the message says why.</exception>
    public async Task<GitRepository> RepositoryOfAsync(string dir, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(dir))
        {
            throw new ForkWorktreeException($"the directory {dir} does not exist");
        }
        var top = await GitAsync(dir, ["rev-parse", "--show-toplevel"], cancellationToken);
        if (top.ExitCode != 0 || top.Output.Length == 0)
        {
            throw new ForkWorktreeException($"{dir} is not inside a git repository (git says: {top.Problem}); make it one (git init, and a first commit) or fork without a worktree");
        }
        var common = await GitAsync(dir, ["rev-parse", "--path-format=absolute", "--git-common-dir"], cancellationToken);
        var gitDir = Path.TrimEndingDirectorySeparator(common.Output);
        if (common.ExitCode != 0 || Path.GetFileName(gitDir) != ".git" || !Directory.Exists(gitDir))
        {
            throw new ForkWorktreeException($"the repository of {dir} keeps its history in {(gitDir.Length == 0 ? "no folder git names" : gitDir)}, "
                + "not in the .git folder of a working tree (a bare repository, or a submodule): a worktree is made only of an ordinary repository");
        }
        if (ProjectDirs.RealPath(gitDir) != gitDir)
        {
            throw new ForkWorktreeException($"the repository's {gitDir} is reached through a symbolic link: a worktree is made only of a repository whose .git folder is its own");
        }
        var repo = Path.GetDirectoryName(gitDir)!;
        if (projectDirs.Check(repo).Refusal is { } refusal)
        {
            throw new ForkWorktreeException($"the repository {repo} may not be mounted: {refusal}");
        }
        var sub = Path.GetRelativePath(top.Output, ProjectDirs.RealPath(dir));
        return new GitRepository(repo, sub.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(sub) ? "." : sub);
    }

    public async Task<ForkWorktree> EnsureAsync(Channel fork, CancellationToken cancellationToken)
    {
        if (fork.Fork is not { DirPath: { } dir } forked)
        {
            throw new ForkWorktreeException("the fork has no project directory to make a worktree of");
        }
        if (forked.Worktree is { } made && IsWorktree(made.Path))
        {
            return made;
        }
        var repository = await RepositoryOfAsync(dir, cancellationToken);
        var path = ForkWorktree.PathFor(repository.Repo, fork.Id);
        var branch = ForkWorktree.BranchFor(fork.Id);
        var gitDir = Path.Join(repository.Repo, ".git");
        var owner = UnixOwnership.OwnerOf(repository.Repo);
        var created = new List<string>();
        try
        {
            // Made here, not by git: none of them may be a link an agent planted to send the worktree elsewhere.
            foreach (var folder in new[] { Path.Join(repository.Repo, ".claude"), Path.GetDirectoryName(path)! })
            {
                if (new FileInfo(folder).LinkTarget is not null || File.Exists(folder))
                {
                    throw new ForkWorktreeException($"{folder} is not a plain folder (a link, or a file): the worktree is not made through it");
                }
                if (!Directory.Exists(folder))
                {
                    Directory.CreateDirectory(folder);
                    created.Add(folder);
                }
            }
        }
        catch (IOException error)
        {
            throw new ForkWorktreeException($"the folder for worktrees in {repository.Repo} cannot be made ({error.Message})");
        }

        // Its metadata may be left from a worktree deleted by hand: git would refuse the path then.
        await GitAsync(repository.Repo, ["worktree", "prune"], cancellationToken);
        var hasBranch = (await GitAsync(repository.Repo, ["rev-parse", "--verify", "--quiet", $"refs/heads/{branch}"], cancellationToken)).ExitCode == 0;
        var before = Candidates(gitDir, branch, fork.Id).Where(p => Path.Exists(p)).ToHashSet(StringComparer.Ordinal);
        // From the parent's directory: its HEAD is what the fork starts from (a fork of a fork: its worktree's).
        var add = await GitAsync(dir, hasBranch ? ["worktree", "add", path, branch] : ["worktree", "add", "-b", branch, path, "HEAD"], cancellationToken);
        if (add.ExitCode != 0)
        {
            logger.LogWarning("Fork {ChannelId}: git worktree add {Path} failed: {Problem}", fork.Id, path, add.Problem);
            throw new ForkWorktreeException($"git worktree add {path} failed: {add.Problem}");
        }
        created.AddRange(Candidates(gitDir, branch, fork.Id).Where(p => Path.Exists(p) && !before.Contains(p)));
        created.Add(path);
        GiveTo(owner, created);
        ExcludeWorktrees(gitDir, owner);

        var worktree = new ForkWorktree(repository.Repo, path, branch, repository.SubDir == "." ? path : Path.Join(path, repository.SubDir));
        logger.LogInformation("Fork {ChannelId}: git worktree {Path} made on branch {Branch}{Again}", fork.Id, path, branch, hasBranch ? " (again)" : "");
        events?.Publish(new LoopEvent("channel.worktree_made", time.GetUtcNow(), fork.Id, null,
            $"git worktree {path} made on branch {branch}" + (hasBranch ? " (which it had before)" : "")));
        return worktree;
    }

    public async Task<string?> RemoveAsync(ForkWorktree worktree, bool force, CancellationToken cancellationToken)
    {
        try
        {
            return await TryRemoveAsync(worktree, force, cancellationToken);
        }
        catch (ForkWorktreeException problem)
        {
            return problem.Message; // git cannot be run here: the worktree stays, and the answer says why
        }
    }

    private async Task<string?> TryRemoveAsync(ForkWorktree worktree, bool force, CancellationToken cancellationToken)
    {
        if (!Directory.Exists(worktree.Path))
        {
            // Deleted by hand: only git's record of it is left.
            await GitAsync(worktree.Repo, ["worktree", "prune"], cancellationToken);
            return null;
        }
        if (!IsWorktree(worktree.Path))
        {
            return $"{worktree.Path} is no git worktree any more (its .git file is gone or was replaced): remove it by hand";
        }
        if (!force)
        {
            var status = await GitAsync(worktree.Path, ["status", "--porcelain", "--ignore-submodules=all"], cancellationToken);
            if (status.ExitCode != 0)
            {
                return $"git status in {worktree.Path} failed: {status.Problem}";
            }
            if (status.Output.Length > 0)
            {
                var lines = status.Output.Split('\n');
                return $"it has changes not committed ({string.Join(", ", lines.Take(5).Select(l => l.Trim()))}{(lines.Length > 5 ? $" and {lines.Length - 5} more" : "")})";
            }
        }
        var remove = await GitAsync(worktree.Repo, force ? ["worktree", "remove", "--force", worktree.Path] : ["worktree", "remove", worktree.Path], cancellationToken);
        if (remove.ExitCode != 0)
        {
            return $"git worktree remove failed: {remove.Problem}";
        }
        logger.LogInformation("Git worktree {Path} removed (branch {Branch} kept){Forced}", worktree.Path, worktree.Branch, force ? ", with its changes" : "");
        return null;
    }

    /// <summary>Whether <paramref name="path"/> holds a worktree: its <c>.git</c> file, not a link.</summary>
    private static bool IsWorktree(string path)
    {
        var marker = new FileInfo(Path.Join(path, ".git"));
        return marker.Exists && marker.LinkTarget is null;
    }

    /// <summary>What <c>git worktree add</c> may create besides the worktree: given to the repository's owner after.</summary>
    private static IEnumerable<string> Candidates(string gitDir, string branch, string forkId) =>
    [
        Path.Join(gitDir, "worktrees"),
        Path.Join(gitDir, "worktrees", forkId),
        Path.Join(gitDir, "refs", "heads", Path.GetDirectoryName(branch)),
        Path.Join(gitDir, "refs", "heads", branch),
        Path.Join(gitDir, "logs", "refs", "heads", Path.GetDirectoryName(branch)),
        Path.Join(gitDir, "logs", "refs", "heads", branch),
    ];

    /// <summary>What the daemon made in the repository belongs to whoever owns the repository: the agent runs
    /// as them and must be able to work (and commit) in its worktree.</summary>
    private void GiveTo(UnixUser? owner, IEnumerable<string> paths)
    {
        if (owner is not { } user || user == UnixOwnership.Current())
        {
            return;
        }
        try
        {
            foreach (var path in paths)
            {
                if (Directory.Exists(path) && new FileInfo(path).LinkTarget is null)
                {
                    UnixOwnership.Change(path, user);
                    foreach (var entry in Directory.EnumerateFileSystemEntries(path, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
                    {
                        UnixOwnership.Change(entry, user);
                    }
                }
                else if (Path.Exists(path))
                {
                    UnixOwnership.Change(path, user);
                }
            }
        }
        catch (IOException error)
        {
            throw new ForkWorktreeException($"the worktree was made but cannot be given to {user}, who owns the repository ({error.Message})");
        }
    }

    /// <summary>Keeps the worktrees out of the parent's <c>git status</c> (they lie inside its checkout), the way a
    /// line in <c>.gitignore</c> would, without changing a file of the project.</summary>
    private void ExcludeWorktrees(string gitDir, UnixUser? owner)
    {
        const string Line = "/.claude/worktrees/";
        var exclude = Path.Join(gitDir, "info", "exclude");
        try
        {
            if (new FileInfo(exclude).LinkTarget is not null || new FileInfo(Path.GetDirectoryName(exclude)!).LinkTarget is not null)
            {
                return;
            }
            var existed = File.Exists(exclude);
            if (existed && File.ReadLines(exclude).Any(l => l.Trim() == Line))
            {
                return;
            }
            var created = !Directory.Exists(Path.GetDirectoryName(exclude));
            Directory.CreateDirectory(Path.GetDirectoryName(exclude)!);
            var text = existed && new FileInfo(exclude).Length > 0 && !File.ReadAllText(exclude).EndsWith('\n') ? "\n" : "";
            File.AppendAllText(exclude, $"{text}# Loop: forks' git worktrees\n{Line}\n");
            if (!existed)
            {
                GiveTo(owner, created ? [Path.GetDirectoryName(exclude)!] : [exclude]);
            }
        }
        catch (IOException error)
        {
            logger.LogWarning("Could not add the worktrees to {Exclude}: {Reason}; the parent's git status lists them", exclude, error.Message);
        }
    }

    private sealed record GitResult(int ExitCode, string Output, string Error)
    {
        /// <summary>What git said went wrong, in one line.</summary>
        public string Problem => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .FirstOrDefault(l => l.StartsWith("fatal:", StringComparison.Ordinal) || l.StartsWith("error:", StringComparison.Ordinal))
            ?? Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault()
            ?? $"exit code {ExitCode}";
    }

    /// <summary>Runs git in <paramref name="dir"/> with the repository's executable settings switched off.</summary>
    private async Task<GitResult> GitAsync(string dir, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var settings = new List<string>
        {
            "safe.directory=*", "core.hooksPath=/dev/null", "core.fsmonitor=false", "gc.auto=0", "maintenance.auto=false",
            "core.logAllRefUpdates=false", "submodule.recurse=false", "core.pager=cat",
        };
        // A filter's clean or smudge command runs on checkout and status: the repository's config names them,
        // and an agent can write that config. Every driver it names is emptied, which git skips.
        foreach (var driver in await FilterDriversAsync(dir, cancellationToken))
        {
            settings.AddRange([$"filter.{driver}.clean=", $"filter.{driver}.smudge=", $"filter.{driver}.process=", $"filter.{driver}.required=false"]);
        }
        return await RunGitAsync(dir, [.. settings.SelectMany(s => new[] { "-c", s }), .. args], cancellationToken);
    }

    private static async Task<IReadOnlyList<string>> FilterDriversAsync(string dir, CancellationToken cancellationToken)
    {
        // Reading config runs nothing of it.
        var config = await RunGitAsync(dir, ["-c", "safe.directory=*", "config", "--null", "--name-only", "--get-regexp", @"^filter\."], cancellationToken);
        return config.Output.Split('\0', StringSplitOptions.RemoveEmptyEntries)
            .Select(key => key.Trim())
            .Where(key => key.Count(c => c == '.') >= 2)
            .Select(key => key[(key.IndexOf('.', StringComparison.Ordinal) + 1)..key.LastIndexOf('.')])
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    private static async Task<GitResult> RunGitAsync(string dir, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("git")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add("-C");
        start.ArgumentList.Add(dir);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // Plain, parseable answers, and never a prompt for anything.
        start.Environment["LC_ALL"] = "C";
        start.Environment["GIT_TERMINAL_PROMPT"] = "0";
        start.Environment["GIT_OPTIONAL_LOCKS"] = "0";
        start.Environment.Remove("GIT_DIR");
        start.Environment.Remove("GIT_WORK_TREE");
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new ForkWorktreeException("git did not start");
        }
        catch (System.ComponentModel.Win32Exception error)
        {
            throw new ForkWorktreeException($"git cannot be run on this machine ({error.Message}): install it to fork with a worktree");
        }
        using (process)
        {
            process.StandardInput.Close();
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var error = process.StandardError.ReadToEndAsync(cancellationToken);
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            return new GitResult(process.ExitCode, (await output).Trim(), (await error).Trim());
        }
    }
}
