using System.Diagnostics;
using System.Net.Sockets;
using Loop.Domain.Agents;

namespace Loop.Config.Tests;

public sealed class MountResolverTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly string _home;
    private readonly string _project;
    private readonly string _loopHome;

    public MountResolverTests()
    {
        _home = _temp.Mkdir("home", "ann");
        _project = _temp.Mkdir("work", "project");
        _loopHome = _temp.Mkdir("home", "ann", ".loop");
    }

    public void Dispose() => _temp.Dispose();

    private MountPlan Resolve(IReadOnlyList<string>? allowedRoots = null, params ConfiguredMount[] mounts) =>
        MountResolver.Resolve(mounts, _project, allowedRoots ?? [], _home, _loopHome);

    private static ConfiguredMount Global(string spec) => new(spec, MountOrigin.Global);

    private static ConfiguredMount Project(string spec) => new(spec, MountOrigin.Project);

    [Fact]
    public void Tilde_expands_to_the_host_home_on_both_sides()
    {
        _temp.Write("home/ann/.gitconfig", "[user]");
        _temp.Mkdir("home", "ann", ".claude");

        var plan = Resolve(null, Global("~/.gitconfig:~/.gitconfig:ro"), Global("~/.claude:~/.claude"));

        Assert.Equal(
            [
                new BindMount($"{_home}/.gitconfig", $"{_home}/.gitconfig", ReadOnly: true),
                new BindMount($"{_home}/.claude", $"{_home}/.claude", ReadOnly: false),
            ],
            plan.Mounts);
        Assert.Empty(plan.Warnings);
        Assert.Empty(plan.SupplementaryGroups);
    }

    [Fact]
    public void Rw_is_accepted_and_means_writable()
    {
        var data = _temp.Mkdir("data");

        var plan = Resolve(null, Global($"{data}:/data:rw"));

        Assert.Equal(new BindMount(data, "/data", ReadOnly: false), Assert.Single(plan.Mounts));
    }

    [Fact]
    public void A_missing_host_path_is_skipped_with_a_warning_naming_it()
    {
        var present = _temp.Mkdir("present");

        var plan = Resolve(null, Global("~/.aws:~/.aws"), Global($"{present}:/p"));

        Assert.Equal(new BindMount(present, "/p", false), Assert.Single(plan.Mounts));
        var warning = Assert.Single(plan.Warnings);
        Assert.Contains($"{_home}/.aws does not exist (skipped)", warning);
    }

    [Theory]
    [InlineData("no-colon")]
    [InlineData("/a:/b:ro:extra")]
    [InlineData("/a:/b:readonly")]
    [InlineData(":/b")]
    public void A_malformed_entry_is_a_warning_naming_it(string spec)
    {
        var plan = Resolve(null, Global(spec));

        Assert.Empty(plan.Mounts);
        Assert.Equal($"mount '{spec}' is malformed: use host_path:container_path or host_path:container_path:ro (ignored)", Assert.Single(plan.Warnings));
    }

    [Fact]
    public void A_relative_container_path_is_refused()
    {
        var plan = Resolve(null, Global($"{_project}:app"));

        Assert.Empty(plan.Mounts);
        Assert.Contains("container path must be absolute", Assert.Single(plan.Warnings));
    }

    [Fact]
    public void Relative_project_mounts_resolve_against_the_project_dir()
    {
        var data = _temp.Mkdir("work", "project", "data");
        var logs = _temp.Mkdir("work", "project", "logs");

        var plan = Resolve(null, Project("./data:/app/data"), Project("logs:/app/logs:ro"));

        Assert.Equal([new BindMount(data, "/app/data", false), new BindMount(logs, "/app/logs", true)], plan.Mounts);
        Assert.Empty(plan.Warnings);
    }

    [Fact]
    public void A_relative_global_mount_is_refused()
    {
        _temp.Mkdir("work", "project", "data");

        var plan = Resolve(null, Global("./data:/app/data"));

        Assert.Empty(plan.Mounts);
        Assert.Contains("host path must be absolute or start with ~/", Assert.Single(plan.Warnings));
    }

    [Fact]
    public void A_project_mount_outside_the_project_dir_is_refused()
    {
        var outside = _temp.Mkdir("work", "secrets");

        var plan = Resolve(null, Project($"{outside}:/s"), Project("../secrets:/s2"), Project("./../../work/secrets:/s3"));

        Assert.Empty(plan.Mounts);
        Assert.Equal(3, plan.Warnings.Count);
        Assert.All(plan.Warnings, w => Assert.Contains($"{outside} is outside the project dir {_project}", w));
        Assert.StartsWith($"project mount '{outside}:/s' refused", plan.Warnings[0]);
    }

    [Fact]
    public void A_sibling_dir_sharing_the_project_dir_prefix_is_outside()
    {
        var sibling = _temp.Mkdir("work", "project-other");

        var plan = Resolve(null, Project($"{sibling}:/x"));

        Assert.Empty(plan.Mounts);
        Assert.Single(plan.Warnings);
    }

    [Fact]
    public void Without_a_project_dir_a_project_mount_is_refused()
    {
        var outside = _temp.Mkdir("work", "secrets");

        var plan = MountResolver.Resolve([Project($"{outside}:/s")], projectDir: null, [], _home, _loopHome);

        Assert.Empty(plan.Mounts);
        Assert.Contains("refused", Assert.Single(plan.Warnings));
    }

    [Fact]
    public void Nothing_in_the_loop_home_is_mounted_not_from_the_global_config_nor_through_a_symlink_under_an_allowed_root()
    {
        var secrets = _temp.Mkdir("home", "ann", ".loop", "secrets");
        File.CreateSymbolicLink(Path.Combine(_project, "state"), _loopHome);

        var plan = Resolve(["~"], Global("~/.loop/secrets:/s:ro"), Project("./state:/state"), Global("~/.loop:/loop"));

        Assert.Empty(plan.Mounts);
        Assert.Equal(3, plan.Warnings.Count);
        Assert.All(plan.Warnings, w => Assert.Contains($"is in the Loop home {_loopHome}", w));
        Assert.Contains(secrets, plan.Warnings[0]);
    }

    [Fact]
    public void The_same_path_from_the_global_config_is_allowed()
    {
        var outside = _temp.Mkdir("work", "secrets");

        var plan = Resolve(null, Global($"{outside}:/s"));

        Assert.Equal(new BindMount(outside, "/s", false), Assert.Single(plan.Mounts));
    }

    [Fact]
    public void A_project_mount_under_an_allowed_mount_root_is_accepted()
    {
        var datasets = _temp.Mkdir("home", "ann", "datasets", "imagenet");

        var plan = Resolve(["~/datasets"], Project("~/datasets/imagenet:/data:ro"));

        Assert.Equal(new BindMount(datasets, "/data", true), Assert.Single(plan.Mounts));
        Assert.Empty(plan.Warnings);
    }

    [Fact]
    public void A_symlink_in_the_project_that_points_outside_is_refused()
    {
        var outside = _temp.Mkdir("elsewhere");
        _temp.Write("elsewhere/id_rsa", "key");
        Directory.CreateSymbolicLink(Path.Combine(_project, "escape"), outside);

        var plan = Resolve(null, Project("./escape:/x"), Project("./escape/id_rsa:/y"));

        Assert.Empty(plan.Mounts);
        Assert.Equal(2, plan.Warnings.Count);
        Assert.Contains($"{outside} is outside the project dir", plan.Warnings[0]);
        Assert.Contains($"{outside}/id_rsa is outside the project dir", plan.Warnings[1]);
    }

    [Fact]
    public void A_symlink_that_stays_inside_the_project_mounts_its_real_path()
    {
        var real = _temp.Mkdir("work", "project", "real-data");
        Directory.CreateSymbolicLink(Path.Combine(_project, "data"), real);

        var plan = Resolve(null, Project("./data:/app/data"));

        Assert.Equal(new BindMount(real, "/app/data", false), Assert.Single(plan.Mounts));
    }

    [Fact]
    public void A_later_mount_at_the_same_container_path_replaces_the_earlier_one()
    {
        var a = _temp.Mkdir("a");
        var b = _temp.Mkdir("work", "project", "b");

        var plan = Resolve(null, Global($"{a}:/data"), Project("./b:/data"));

        Assert.Equal(new BindMount(b, "/data", false), Assert.Single(plan.Mounts));
        Assert.Contains($"replaces the earlier mount of {a} at /data", Assert.Single(plan.Warnings));
    }

    [Fact]
    public void A_mounted_unix_socket_adds_its_group_to_the_supplementary_groups()
    {
        var socketPath = _temp.Combine("engine.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        ChangeGroup(socketPath, 4242);
        var plainFile = _temp.Write("plain.txt", "x");
        ChangeGroup(plainFile, 4343);

        var plan = Resolve(null, Global($"{socketPath}:/var/run/docker.sock"), Global($"{plainFile}:/plain"));

        Assert.Equal([4242L], plan.SupplementaryGroups);
        Assert.Equal(new BindMount(socketPath, "/var/run/docker.sock", false), plan.Mounts[0]);
    }

    [Fact]
    public void The_ExpandHome_helper_and_EffectiveSettings_overload_agree()
    {
        var data = _temp.Mkdir("work", "project", "data");
        var paths = new LoopPaths(_temp.Combine("loop"), _home);
        var global = new LoopConfig { DbPath = "/tmp/x.db" };
        _temp.Write("work/project/.loop/config.json", """{ "mounts": ["./data:~/data"] }""");

        var plan = MountResolver.Resolve(EffectiveSettings.For(global, _project), global, paths);

        Assert.Equal(new BindMount(data, $"{_home}/data", false), Assert.Single(plan.Mounts));
    }

    private static void ChangeGroup(string path, int gid)
    {
        // Tests run as root here; chgrp accepts a numeric id without a matching group entry.
        using var process = Process.Start("chgrp", [gid.ToString(System.Globalization.CultureInfo.InvariantCulture), path]);
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }
}
