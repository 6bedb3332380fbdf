"""Every language judged the same way (every backend): compiled once, a fresh process per test,
each test's stdin its own."""

from __future__ import annotations

import pytest

from crucible_ray.languages import IMAGES

# Each reads two integers and prints their sum.
SUM = {
    "python": "a, b = map(int, input().split())\nprint(a + b)\n",
    "javascript": "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/)"
    ".map(BigInt);\nconsole.log((a + b).toString());\n",
    "go": 'package main\nimport "fmt"\nfunc main() { var a, b int64; fmt.Scan(&a, &b);'
    " fmt.Println(a + b) }\n",
    "c": '#include <stdio.h>\nint main(void) { long long a, b; scanf("%lld %lld", &a, &b);'
    ' printf("%lld\\n", a + b); return 0; }\n',
    "cpp": "#include <bits/stdc++.h>\nint main() { long long a, b; std::cin >> a >> b;"
    " std::cout << a + b << '\\n'; }\n",
    "rust": "use std::io::Read;\nfn main() { let mut s = String::new();"
    " std::io::stdin().read_to_string(&mut s).unwrap();"
    " let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();"
    ' println!("{}", v[0] + v[1]); }\n',
    "java": "import java.util.Scanner;\npublic class Sum { public static void main(String[] x) {"
    " Scanner in = new Scanner(System.in); long a = in.nextLong(), b = in.nextLong();"
    " System.out.println(a + b); } }\n",
}
TESTS = [("1 2", "3\n"), ("-7 7", "0\n"), ("4000000000 2", "4000000002\n")]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_judges_all_its_tests_in_one_sandbox(run_judge, image):
    language = IMAGES[image].language
    result = run_judge(SUM[language], TESTS, language=language, image=image)
    assert (result.verdict, result.passed, result.sandboxes) == ("AC", 3, 1), result.tests
    assert [t.stdout_preview for t in result.tests] == ["3\n", "0\n", "4000000002\n"]
    assert (result.compile is not None) == (IMAGES[image].compile is not None)
    assert result.image == image
