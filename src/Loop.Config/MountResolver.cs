using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Loop.Domain.Agents;

namespace Loop.Config;

/// <summary>The bind mounts to give a run, the groups its process needs for mounted sockets,
/// and one line per mount that was skipped or refused.</summary>
public sealed record MountPlan(IReadOnlyList<BindMount> Mounts, IReadOnlyList<long> SupplementaryGroups, IReadOnlyList<string> Warnings);

/// <summary>Turns configured mount specs ("host:container[:ro|:rw]") into bind mounts. Host paths
/// are resolved to their real location (symlinks followed), so what is checked is what is mounted.</summary>
public static class MountResolver
{
    private const string Format = "use host_path:container_path or host_path:container_path:ro";

    public static MountPlan Resolve(EffectiveSettings settings, LoopConfig global, LoopPaths paths) =>
        Resolve(settings.Mounts, settings.ProjectDir, global.AllowedMountRoots, paths.UserHome, paths.Home);

    /// <param name="mounts">Specs in order; a later mount at the same container path replaces an earlier one.</param>
    /// <param name="projectDir">Base of relative project mounts and the boundary they must stay in.</param>
    /// <param name="allowedMountRoots">Host directories outside the project that project mounts may use.</param>
    /// <param name="userHome">What <c>~</c> means on both sides.</param>
    /// <param name="loopHome">The Loop home: nothing in it is ever mounted (a mount that holds it has it
    /// covered, see <see cref="ProjectDirs.MaskedPaths"/>).</param>
    public static MountPlan Resolve(IEnumerable<ConfiguredMount> mounts, string? projectDir, IReadOnlyList<string> allowedMountRoots, string userHome, string loopHome)
    {
        var homeReal = ProjectDirs.RealPath(loopHome);
        var byTarget = new List<BindMount>();
        var groups = new List<long>();
        var warnings = new List<string>();
        var projectReal = projectDir is null ? null : RealPath(projectDir) ?? Path.GetFullPath(projectDir);
        var roots = allowedMountRoots.Select(root =>
        {
            var expanded = Path.GetFullPath(LoopPaths.ExpandHome(root, userHome));
            return RealPath(expanded) ?? expanded;
        }).ToList();

        foreach (var mount in mounts)
        {
            var origin = mount.Origin == MountOrigin.Project ? "project mount" : "mount";
            var parts = mount.Spec.Split(':');
            if (parts.Length is < 2 or > 3 || parts.Any(string.IsNullOrWhiteSpace) || (parts.Length == 3 && parts[2] is not ("ro" or "rw")))
            {
                warnings.Add($"{origin} '{mount.Spec}' is malformed: {Format} (ignored)");
                continue;
            }

            var host = LoopPaths.ExpandHome(parts[0], userHome);
            if (!Path.IsPathRooted(host))
            {
                if (mount.Origin != MountOrigin.Project || projectDir is null)
                {
                    warnings.Add($"{origin} '{mount.Spec}': the host path must be absolute or start with ~/ (ignored)");
                    continue;
                }

                host = Path.Combine(projectDir, host);
            }

            var container = LoopPaths.ExpandHome(parts[1], userHome);
            if (!Path.IsPathRooted(container))
            {
                warnings.Add($"{origin} '{mount.Spec}': the container path must be absolute or start with ~/ (ignored)");
                continue;
            }

            var real = RealPath(host);
            if (real is null)
            {
                warnings.Add($"{origin} '{mount.Spec}': host path {Path.GetFullPath(host)} does not exist (skipped)");
                continue;
            }

            if (IsUnder(real, homeReal))
            {
                warnings.Add($"{origin} '{mount.Spec}' refused: {real} is in the Loop home {homeReal}, which holds its store and secrets (ignored)");
                continue;
            }

            if (mount.Origin == MountOrigin.Project
                && (projectReal is null || !IsUnder(real, projectReal))
                && !roots.Any(root => IsUnder(real, root)))
            {
                warnings.Add($"project mount '{mount.Spec}' refused: {real} is outside the project dir {projectReal ?? "(none)"} "
                    + "and not under any of the global config's allowed_mount_roots (ignored)");
                continue;
            }

            var bind = new BindMount(real, Path.GetFullPath(container), ReadOnly: parts.Length == 3 && parts[2] == "ro");
            var earlier = byTarget.FindIndex(m => m.ContainerPath == bind.ContainerPath);
            if (earlier >= 0)
            {
                warnings.Add($"{origin} '{mount.Spec}' replaces the earlier mount of {byTarget[earlier].HostPath} at {bind.ContainerPath}");
                byTarget.RemoveAt(earlier);
            }

            byTarget.Add(bind);
            if (SocketGroup(real) is { } gid && !groups.Contains(gid))
            {
                groups.Add(gid);
            }
        }

        return new MountPlan(byTarget, groups, warnings);
    }

    private static bool IsUnder(string path, string root)
    {
        var trimmed = root.TrimEnd('/');
        return path == root || path == trimmed || path.StartsWith(trimmed + "/", StringComparison.Ordinal);
    }

    /// <summary>The path with every symlink and ".." resolved the way the kernel would, or null when it does not exist.</summary>
    internal static string? RealPath(string path)
    {
        // Not Path.GetFullPath: it would fold "link/.." lexically, which is not where the kernel goes.
        var absolute = Path.IsPathRooted(path) ? path : Path.Combine(Environment.CurrentDirectory, path);
        var resolved = realpath(absolute, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            free(resolved);
        }
    }

    /// <summary>The group owning <paramref name="path"/> when it is a unix socket: the agent's process
    /// joins it so the socket stays usable inside the container (e.g. the docker group).</summary>
    internal static long? SocketGroup(string path)
    {
        if (Directory.Exists(path) || !File.Exists(path))
        {
            return null;
        }

        // .NET exposes neither the file type "socket" nor the owning group; stat(1) does.
        var output = RunStat(path, "-c", "%F:%g") ?? RunStat(path, "-f", "%HT:%g");
        if (output is null)
        {
            return null;
        }

        var separator = output.LastIndexOf(':');
        return separator > 0
            && output[..separator].Equals("socket", StringComparison.OrdinalIgnoreCase)
            && long.TryParse(output[(separator + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var gid)
            ? gid
            : null;
    }

    private static string? RunStat(string path, string formatFlag, string format)
    {
        var start = new ProcessStartInfo("stat")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "-L", formatFlag, format, path })
        {
            start.ArgumentList.Add(argument);
        }

        try
        {
            using var process = Process.Start(start);
            if (process is null)
            {
                return null;
            }

            var output = process.StandardOutput.ReadToEnd();
            process.StandardError.ReadToEnd();
            process.WaitForExit();
            return process.ExitCode == 0 ? output.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr realpath(string path, IntPtr resolvedPath);

    [DllImport("libc")]
    private static extern void free(IntPtr pointer);
}
