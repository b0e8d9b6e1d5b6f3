using Loop.Domain.Agents;

namespace Loop.Config.Tests;

/// <summary>The rules for project directories, over real paths: no file system needed.</summary>
public sealed class ProjectDirRulesTests
{
    private static readonly ProjectDirRules Rules = new("/home/ann/.loop",
        [new ProtectedDir("/var/run", "the Docker socket's directory"), .. ProjectDirs.SystemDirectories.Select(d => new ProtectedDir(d, "the system directory"))],
        []);

    private static ProjectDirRules With(params string[] allowed) => Rules with { Allowed = allowed };

    [Theory]
    [InlineData("/home/ann/project")]
    [InlineData("/home/ann/.loopy")]
    [InlineData("/tmp")]
    [InlineData("/tmp/loop-proj-1")]
    [InlineData("/srv/www")]
    [InlineData("/library")]
    [InlineData("/etc-backup/site")]
    [InlineData("/opt/app")]
    public void Ordinary_directories_are_projects(string dir) => Assert.Null(Rules.Refusal(dir));

    [Theory]
    [InlineData("/", "is the root of the file system")]
    [InlineData("/etc", "is the system directory /etc")]
    [InlineData("/etc/nginx", "lies inside the system directory /etc")]
    [InlineData("/proc", "is the system directory /proc")]
    [InlineData("/proc/self/root", "lies inside the system directory /proc")]
    [InlineData("/sys", "is the system directory /sys")]
    [InlineData("/dev/shm", "lies inside the system directory /dev")]
    [InlineData("/boot", "is the system directory /boot")]
    [InlineData("/usr/local/src", "lies inside the system directory /usr")]
    [InlineData("/bin", "is the system directory /bin")]
    [InlineData("/sbin", "is the system directory /sbin")]
    [InlineData("/lib", "is the system directory /lib")]
    [InlineData("/lib32", "is the system directory /lib32")]
    [InlineData("/lib64/x", "lies inside the system directory /lib64")]
    [InlineData("/libx32", "is the system directory /libx32")]
    [InlineData("/var/lib/docker", "lies inside the system directory /var")]
    [InlineData("/run/user/1000", "lies inside the system directory /run")]
    [InlineData("/var/run", "is the Docker socket's directory /var/run")]
    public void The_root_and_system_directories_are_refused_saying_which(string dir, string reason)
    {
        var refusal = Rules.Refusal(dir);

        Assert.NotNull(refusal);
        Assert.StartsWith(reason, refusal);
        Assert.Contains("allowed_project_dirs", refusal);
    }

    [Fact]
    public void The_loop_home_what_lies_inside_it_and_what_holds_it_are_refused()
    {
        Assert.StartsWith("is the Loop home", Rules.Refusal("/home/ann/.loop"));
        Assert.StartsWith("lies inside the Loop home /home/ann/.loop", Rules.Refusal("/home/ann/.loop/secrets"));
        Assert.StartsWith("lies inside the Loop home /home/ann/.loop", Rules.Refusal("/home/ann/.loop/ch_1/work"));
        Assert.StartsWith("holds the Loop home /home/ann/.loop", Rules.Refusal("/home/ann"));
        Assert.StartsWith("holds the Loop home /home/ann/.loop", Rules.Refusal("/home"));
    }

    [Fact]
    public void An_allowed_directory_lets_itself_and_what_lies_under_it_through()
    {
        var rules = With("/var/www", "/home/ann");

        Assert.Null(rules.Refusal("/var/www"));
        Assert.Null(rules.Refusal("/var/www/site"));
        Assert.NotNull(rules.Refusal("/var"));
        Assert.NotNull(rules.Refusal("/var/wwwx"));
        // A project at ~ that holds the home: allowed explicitly, the home is then masked in its containers.
        Assert.Null(rules.Refusal("/home/ann"));
    }

    [Fact]
    public void The_loop_home_and_what_lies_inside_it_are_never_allowed()
    {
        var rules = With("/", "/home/ann/.loop", "/home/ann/.loop/secrets");

        Assert.StartsWith("is the Loop home", rules.Refusal("/home/ann/.loop"));
        Assert.StartsWith("lies inside the Loop home", rules.Refusal("/home/ann/.loop/secrets"));
        Assert.Null(rules.Refusal("/etc"));
    }

    [Theory]
    [InlineData(null, "/var/run")]
    [InlineData("/var/run/docker.sock", "/var/run")]
    [InlineData("/home/ann/.docker/desktop/docker.sock", "/home/ann/.docker/desktop")]
    public void The_docker_socket_directory_is_that_of_the_engines_socket_or_of_the_default_one(string? dockerSocket, string expected) =>
        Assert.Equal(expected, ProjectDirs.DockerSocketDir(dockerSocket));

    [Fact]
    public void A_project_holding_the_docker_socket_of_the_engine_in_use_is_refused()
    {
        var paths = new LoopPaths("/home/ann/.loop", "/home/ann");
        var rules = new ProjectDirs(LoopConfig.Defaults(paths), paths, "/srv/docker/docker.sock").Rules();

        Assert.StartsWith("holds the Docker socket's directory /srv/docker", rules.Refusal("/srv"));
        Assert.StartsWith("is the Docker socket's directory /srv/docker", rules.Refusal("/srv/docker"));
        Assert.Null(rules.Refusal("/srv/www"));
    }
}

/// <summary>Real paths on a real file system: what is judged is where a path leads.</summary>
public sealed class ProjectDirsTests : IDisposable
{
    private readonly TempDir _temp = new();
    private readonly LoopPaths _paths;
    private readonly string _home;

    public ProjectDirsTests()
    {
        _home = _temp.Mkdir("ann", ".loop");
        _temp.Mkdir("ann", ".loop", "secrets");
        _paths = new LoopPaths(_home, _temp.Combine("ann"));
    }

    public void Dispose() => _temp.Dispose();

    private ProjectDirs Dirs(params string[] allowed) =>
        new(LoopConfig.Defaults(_paths) with { AllowedProjectDirs = allowed }, _paths, null);

    private string Link(string name, string target)
    {
        var link = _temp.Combine(name);
        File.CreateSymbolicLink(link, target);
        return link;
    }

    [Fact]
    public void A_symlink_is_followed_to_where_it_leads_also_through_parts_that_do_not_exist_yet()
    {
        var real = _temp.Mkdir("data", "projects");
        var link = Link("projects", real);

        Assert.Equal(real, ProjectDirs.RealPath(link));
        Assert.Equal(Path.Combine(real, "new", "app"), ProjectDirs.RealPath(Path.Combine(link, "new", "app")));
        // A link to a place that does not exist (yet) leads there all the same.
        Assert.Equal(Path.Combine(_home, "later"), ProjectDirs.RealPath(Link("dangling", Path.Combine(_home, "later"))));
    }

    [Fact]
    public void A_symlink_to_the_loop_home_or_its_secrets_is_refused_naming_dir_path_and_where_it_leads()
    {
        var toHome = Link("innocent", _home);
        var toSecrets = Link("also-innocent", Path.Combine(_home, "secrets"));

        var (real, refusal) = Dirs().Check(toHome);
        Assert.Equal(_home, real);
        Assert.Equal($"dir_path {toHome} (which leads to {_home}) is the Loop home, where Loop keeps its store and secrets; no project may be there", refusal);
        Assert.StartsWith($"dir_path {toSecrets} (which leads to {_home}/secrets) lies inside the Loop home", Dirs(_home, _temp.Path).Check(toSecrets).Refusal);
    }

    [Fact]
    public void An_ordinary_directory_passes_as_its_real_path()
    {
        var project = _temp.Mkdir("ann", "project");

        Assert.Equal((project, (string?)null), Dirs().Check(project + "/"));
        Assert.Equal((project, (string?)null), Dirs().Check(Link("project-link", project)));
    }

    [Fact]
    public void A_directory_holding_the_home_passes_only_when_allowed()
    {
        var user = _temp.Combine("ann");

        Assert.StartsWith($"dir_path {user} holds the Loop home {_home}", Dirs().Check(user).Refusal);
        Assert.Null(Dirs(user).Check(user).Refusal);
        Assert.Null(Dirs(user).Check(Link("home-link", user)).Refusal);
    }

    [Fact]
    public void Before_a_run_a_project_dir_swapped_for_a_symlink_to_the_home_is_refused_and_a_missing_one_is_created()
    {
        var project = _temp.Mkdir("ann", "project");
        var dirs = Dirs();
        Assert.Equal(project, dirs.ForRun("ch_1", project));

        Directory.Delete(project);
        File.CreateSymbolicLink(project, _home);
        var refused = Assert.Throws<ConfigException>(() => dirs.ForRun("ch_1", project));
        Assert.Contains($"dir_path {project} (which leads to {_home}) is the Loop home", refused.Message);
        Assert.Contains("the agent was not started", refused.Message);

        File.Delete(project);
        Assert.Equal(project, dirs.ForRun("ch_1", project));
        Assert.True(Directory.Exists(project));
    }

    [Fact]
    public void A_channel_without_a_project_dir_works_in_its_own_dir_in_the_home()
    {
        var work = _paths.ChannelWorkDir("ch_2");

        Assert.Equal(work, Dirs().ForRun("ch_2", work));
        Assert.True(Directory.Exists(work));
        Assert.Throws<ConfigException>(() => Dirs().ForRun("ch_3", work));
    }

    [Fact]
    public void The_home_is_masked_where_a_mount_shows_it_even_through_a_symlink_and_not_inside_itself()
    {
        var user = _temp.Combine("ann");
        var userLink = Link("user-link", user);
        BindMount[] mounts =
        [
            new(user, user, ReadOnly: false),
            new(userLink, "/host-home", ReadOnly: true),
            new(_temp.Path, "/all", ReadOnly: true),
            new(Path.Combine(_home, "mcp", "ch_1"), Path.Combine(_home, "mcp", "ch_1"), ReadOnly: true),
            new(_temp.Mkdir("ann", "project"), _temp.Combine("ann", "project"), ReadOnly: false),
        ];

        Assert.Equal([_home, "/host-home/.loop", "/all/ann/.loop"], Dirs().MaskedPaths(mounts));
    }
}
